using System.Diagnostics;
using System.Threading.RateLimiting;

namespace CircuitBreaker.Http;

/// <summary>
/// The circuit breaker in the <c>IHttpClientFactory</c> pipeline. It is thin on purpose: it finds the
/// circuit of the request's authority in the registry, asks it (and the host's limits) for a permit, sends the
/// request under <see cref="CircuitBreakerOptions.AttemptTimeout"/> and reports the outcome; a call that is turned
/// away goes down the fallback chain. Add it with <c>AddCircuitBreaker()</c>; its state lives in the registry, so
/// rebuilt handlers lose nothing.
/// </summary>
internal sealed class CircuitBreakerHandler : DelegatingHandler
{
    private readonly ClientCircuits _circuits;
    private readonly TimeProvider _timeProvider;
    private readonly FallbackChain _fallback; // what answers a call that is turned away, and the cache's capture of good responses

    internal CircuitBreakerHandler(ClientCircuits circuits, TimeProvider timeProvider)
    {
        _circuits = circuits;
        _timeProvider = timeProvider;
        _fallback = new FallbackChain(circuits, SendToAlternateAsync, SendToAlternate);
    }

    /// <inheritdoc />
    protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        if (CircuitOf(request) is not { } circuit)
        {
            return base.SendAsync(request, cancellationToken);
        }

        var permit = circuit.Machine.TryAcquire();
        if (!permit.IsGranted && !Observed(circuit, Rejection.ByCircuit(permit)))
        {
            return _fallback.FallBackAsync(request, circuit, Rejection.ByCircuit(permit), cancellationToken);
        }

        return circuit.Limits is { } limits
            ? SendWithinLimitsAsync(request, circuit, permit, limits, toAlternate: false, cancellationToken)
            : SendThroughAsync(request, circuit, permit, cancellationToken);
    }

    /// <inheritdoc />
    protected override HttpResponseMessage Send(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        if (CircuitOf(request) is not { } circuit)
        {
            return base.Send(request, cancellationToken);
        }

        var permit = circuit.Machine.TryAcquire();
        if (!permit.IsGranted && !Observed(circuit, Rejection.ByCircuit(permit)))
        {
            return _fallback.FallBack(request, circuit, Rejection.ByCircuit(permit), cancellationToken);
        }

        return circuit.Limits is { } limits
            ? SendWithinLimits(request, circuit, permit, limits, toAlternate: false, cancellationToken)
            : SendThrough(request, circuit, permit, cancellationToken);
    }

    /// <summary>
    /// The fallback chain's call to the alternate backend, whose circuit granted <paramref name="permit"/>: through
    /// the alternate host's own limits, like any call to that host; all traffic moves there exactly when the primary
    /// is broken, which is when its bulkhead and throttle matter most.
    /// </summary>
    private Task<HttpResponseMessage> SendToAlternateAsync(HttpRequestMessage request, CircuitEntry alternate, CircuitPermit permit, CancellationToken cancellationToken) =>
        alternate.Limits is { } limits
            ? SendWithinLimitsAsync(request, alternate, permit, limits, toAlternate: true, cancellationToken)
            : SendThroughAsync(request, alternate, permit, cancellationToken);

    /// <summary>The synchronous <see cref="SendToAlternateAsync"/>.</summary>
    private HttpResponseMessage SendToAlternate(HttpRequestMessage request, CircuitEntry alternate, CircuitPermit permit, CancellationToken cancellationToken) =>
        alternate.Limits is { } limits
            ? SendWithinLimits(request, alternate, permit, limits, toAlternate: true, cancellationToken)
            : SendThrough(request, alternate, permit, cancellationToken);

    /// <summary>
    /// Sends a call the circuit let through within the host's limits, for <see cref="HttpClient.Send(HttpRequestMessage)"/>.
    /// It cannot wait in the bulkhead's queue: beyond the limit, calls are shed at once.
    /// </summary>
    private HttpResponseMessage SendWithinLimits(HttpRequestMessage request, CircuitEntry circuit, CircuitPermit permit, CircuitLimits limits, bool toAlternate, CancellationToken cancellationToken)
    {
        if (Shed(circuit, permit, limits, out var shed))
        {
            return TurnAway(request, circuit, shed, toAlternate, cancellationToken);
        }

        using var lease = limits.HasConcurrencyLimit ? limits.Enter() : null;
        if (lease is { IsAcquired: false } && !Observed(circuit, Rejection.ByLimit(LoadSheddingReason.Concurrency, permit)))
        {
            circuit.Machine.Release(permit);
            return TurnAway(request, circuit, Rejection.ByLimit(LoadSheddingReason.Concurrency, permit), toAlternate, cancellationToken);
        }

        return SendThrough(request, circuit, permit, cancellationToken);
    }

    /// <summary>
    /// Sends a call the circuit let through within the host's limits: the slow start after recovery, the
    /// throttle, then the bulkhead (waiting in its queue when it has room). A shed call gives its permit back
    /// uncounted, as the host did nothing wrong, and is turned away (<see cref="TurnAwayAsync"/>).
    /// </summary>
    private Task<HttpResponseMessage> SendWithinLimitsAsync(HttpRequestMessage request, CircuitEntry circuit, CircuitPermit permit, CircuitLimits limits, bool toAlternate, CancellationToken cancellationToken)
    {
        if (Shed(circuit, permit, limits, out var shed))
        {
            return TurnAwayAsync(request, circuit, shed, toAlternate, cancellationToken);
        }

        // Not an async method up to here: the slow start and the throttle need no waiting, and a call they let through
        // hands back the send's own task, as a call without limits does, rather than a state machine and a task of its own.
        if (!limits.HasConcurrencyLimit)
        {
            return SendThroughAsync(request, circuit, permit, cancellationToken);
        }

        // Observe-only changes no call's path: a call beyond the limit is counted and sent at once, as the synchronous
        // path does, rather than held in the queue behind the calls in flight.
        var entering = circuit.Enforce ? limits.EnterAsync(cancellationToken) : new ValueTask<RateLimitLease>(limits.Enter());
        if (!entering.IsCompletedSuccessfully)
        {
            return SendInBulkheadAsync(request, circuit, permit, entering, toAlternate, cancellationToken);
        }

        // A result is read once: a shed or outdated call goes on with the lease it got.
        var lease = entering.Result;
        if (!lease.IsAcquired || circuit.Machine.IsOutdated(permit))
        {
            return SendInBulkheadAsync(request, circuit, permit, new ValueTask<RateLimitLease>(lease), toAlternate, cancellationToken);
        }

        // A slot was free: the call holds it until its response is back.
        Task<HttpResponseMessage> sending;
        try
        {
            sending = SendThroughAsync(request, circuit, permit, cancellationToken);
        }
        catch
        {
            lease.Dispose();
            throw;
        }

        if (sending.IsCompleted)
        {
            lease.Dispose();
            return sending;
        }

        return ReleaseWhenSentAsync(sending, lease);
    }

    /// <summary>Gives the bulkhead's slot back once the call holding it is over.</summary>
    private static async Task<HttpResponseMessage> ReleaseWhenSentAsync(Task<HttpResponseMessage> sending, RateLimitLease lease)
    {
        try
        {
            return await sending.ConfigureAwait(false);
        }
        finally
        {
            lease.Dispose();
        }
    }

    /// <summary>
    /// The bulkhead's slow path: a call that waits in its queue (or was shed by it, or whose circuit moved in the
    /// meantime); <paramref name="entering"/> is its request for a slot.
    /// </summary>
    private async Task<HttpResponseMessage> SendInBulkheadAsync(HttpRequestMessage request, CircuitEntry circuit, CircuitPermit permit, ValueTask<RateLimitLease> entering, bool toAlternate, CancellationToken cancellationToken)
    {
        RateLimitLease lease;
        try
        {
            lease = await entering.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            circuit.Machine.Release(permit); // the caller gave up while queued
            throw;
        }

        using (lease)
        {
            if (!lease.IsAcquired && !Observed(circuit, Rejection.ByLimit(LoadSheddingReason.Concurrency, permit)))
            {
                circuit.Machine.Release(permit);
                return await TurnAwayAsync(request, circuit, Rejection.ByLimit(LoadSheddingReason.Concurrency, permit), toAlternate, cancellationToken).ConfigureAwait(false);
            }

            if (circuit.Machine.IsOutdated(permit))
            {
                // The circuit moved while the call waited in the queue, typically opened by the very calls it waited
                // behind: its permit is void, and the circuit decides again, as for a call that arrives now.
                permit = circuit.Machine.TryAcquire();
                if (!permit.IsGranted && !Observed(circuit, Rejection.ByCircuit(permit)))
                {
                    lease.Dispose(); // not held through the fallback chain, which may call another host
                    return await TurnAwayAsync(request, circuit, Rejection.ByCircuit(permit), toAlternate, cancellationToken).ConfigureAwait(false);
                }
            }

            return await SendThroughAsync(request, circuit, permit, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// A call turned away after the circuit let it in (a limit shed it, or the circuit moved while it queued): the caller's
    /// call takes the fallback chain; a call the chain itself sent to the alternate backend fails instead, as an
    /// unavailable alternate does, and the chain goes on without it.
    /// </summary>
    private Task<HttpResponseMessage> TurnAwayAsync(HttpRequestMessage request, CircuitEntry circuit, Rejection rejection, bool toAlternate, CancellationToken cancellationToken) =>
        toAlternate
            ? Task.FromException<HttpResponseMessage>(_fallback.AlternateShed(circuit, rejection))
            : _fallback.FallBackAsync(request, circuit, rejection, cancellationToken);

    /// <summary>The synchronous <see cref="TurnAwayAsync"/>.</summary>
    private HttpResponseMessage TurnAway(HttpRequestMessage request, CircuitEntry circuit, in Rejection rejection, bool toAlternate, CancellationToken cancellationToken) =>
        toAlternate ? throw _fallback.AlternateShed(circuit, rejection) : _fallback.FallBack(request, circuit, rejection, cancellationToken);

    /// <summary>The slow start and the throttle, which need no waiting; true when one of them sheds the call.</summary>
    private bool Shed(CircuitEntry circuit, in CircuitPermit permit, CircuitLimits limits, out Rejection shed)
    {
        shed = default;
        // SinceRecovery takes the circuit's lock: read only when there is a slow start to ask it about.
        if (permit.Kind == CircuitPermitKind.Closed && limits.HasRampUp && !limits.AdmitDuringRampUp(circuit.Machine.SinceRecovery))
        {
            shed = Rejection.ByLimit(LoadSheddingReason.RampUp, permit);
        }
        else if (!limits.TryThrottle(out var retryAfter))
        {
            shed = Rejection.ByLimit(LoadSheddingReason.Throttle, permit, retryAfter);
        }
        else
        {
            return false;
        }

        if (Observed(circuit, shed))
        {
            return false;
        }

        circuit.Machine.Release(permit);
        return true;
    }

    /// <summary>
    /// In observe-only mode (<see cref="CircuitBreakerOptions.Enforce"/> off) a call the circuit would turn away
    /// is counted and logged as such, then sent all the same; its outcome does not move the circuit, which goes
    /// on exactly as an enforcing one would. An isolated circuit still turns calls away.
    /// </summary>
    private bool Observed(CircuitEntry circuit, in Rejection rejection)
    {
        // Isolating a circuit is an operator's explicit order to stop its traffic, which observe-only does not override.
        if (circuit.Enforce || rejection.State == CircuitState.Isolated)
        {
            return false;
        }

        _circuits.Registry.Metrics.RecordRejected(circuit, FallbackPolicy.NoneKind, rejection.Reason, enforced: false);
        Log.CallObserved(_circuits.Registry.Logger, circuit, rejection.State);
        return true;
    }

    /// <summary>
    /// The circuit of the request's authority; <see langword="null"/> for a scheme other than http and https,
    /// which goes to the inner handler as if there were no breaker. HTTP's handlers refuse such a request
    /// themselves (SocketsHttpHandler throws <see cref="NotSupportedException"/>), a custom inner handler may serve
    /// it, and either way it says nothing about an HTTP host's health: a circuit for it would only take a slot of
    /// <see cref="CircuitBreakerOptions.MaxCircuits"/>.
    /// </summary>
    private CircuitEntry? CircuitOf(HttpRequestMessage request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var uri = request.RequestUri;
        if (uri is null || !uri.IsAbsoluteUri)
        {
            throw new InvalidOperationException("The request has no absolute RequestUri; set HttpClient.BaseAddress or use an absolute URI.");
        }

        var scheme = uri.Scheme;
        return scheme == Uri.UriSchemeHttp || scheme == Uri.UriSchemeHttps ? _circuits.GetOrCreate(uri, scheme) : null;
    }

    private Task<HttpResponseMessage> SendThroughAsync(HttpRequestMessage request, CircuitEntry circuit, CircuitPermit permit, CancellationToken cancellationToken)
    {
        Activity? probe = null;
        var attempt = permit.Kind == CircuitPermitKind.Probe ? StartProbe(circuit, permit, out probe) : StartAttempt(circuit);

        // The caller's cancellation is linked to the attempt's token only once the call below has gone asynchronous,
        // as sockets and semaphores register only when they must wait: the caller's token is HttpClient's source, new
        // for every request, whose first registration allocates, and a call answered synchronously needs none. The
        // price: a handler below that blocks before returning sees the caller's cancellation only once it returns
        // (the AttemptTimeout still reaches it). A caller that has already cancelled is linked first, so that the
        // call below starts cancelled.
        var linked = cancellationToken.IsCancellationRequested;
        if (linked)
        {
            attempt.LinkCaller(cancellationToken);
        }

        // Read here, as the lookup while open reads it: the handlers below may add headers (Accept-Encoding, a token).
        var cacheable = _fallback.BeforeSend(request, circuit.Fallback);
        Task<HttpResponseMessage> sending;
        try
        {
            sending = base.SendAsync(request, attempt.Token(cancellationToken));
        }
        catch (Exception ex)
        {
            sending = Task.FromException<HttpResponseMessage>(ex);
        }

        if (!sending.IsCompletedSuccessfully)
        {
            if (!linked && !sending.IsCompleted)
            {
                // A cancellation during the synchronous part fires the link at once.
                attempt.LinkCaller(cancellationToken);
            }

            var completing = CompleteAsync(sending, cacheable, circuit, permit, attempt, probe, cancellationToken);
            if (probe is not null)
            {
                // Starting the probe's span made it current on this synchronous path, which returns into the caller's
                // execution context: a handler above would go on (and retry) under the ended probe. The call below
                // has captured it as its parent already; the caller gets back the activity it had, as from an async method.
                Activity.Current = probe.Parent;
            }

            return completing;
        }

        // Answered synchronously (a cache or stub below): hand back the same task, with no state machine.
        try
        {
            OnResponse(cacheable, sending.Result, circuit, permit, attempt, probe);
        }
        finally
        {
            attempt.Dispose();
            CircuitBreakerTracing.Stop(probe, circuit);
        }

        return sending;
    }

    private async Task<HttpResponseMessage> CompleteAsync(
        Task<HttpResponseMessage> sending,
        CacheableRequest? cacheable,
        CircuitEntry circuit,
        CircuitPermit permit,
        Attempt attempt,
        Activity? probe,
        CancellationToken cancellationToken)
    {
        // try/finally rather than using: using would copy the attempt and the probe into fields of their own, and
        // this state machine is allocated for every call that completes asynchronously.
        try
        {
            HttpResponseMessage response;
            try
            {
                response = await sending.ConfigureAwait(false);
            }
            catch (Exception ex) when (OnError(ex, circuit, permit, attempt, probe, cancellationToken) is { } translated)
            {
                // The filter records the outcome before unwinding; a null translation rethrows the original untouched.
                throw translated;
            }

            OnResponse(cacheable, response, circuit, permit, attempt, probe);
            return response;
        }
        finally
        {
            attempt.Dispose();
            CircuitBreakerTracing.Stop(probe, circuit);
        }
    }

    private Attempt StartAttempt(CircuitEntry circuit)
    {
        var classifier = circuit.Classifier;
        return new Attempt(classifier.AttemptTimeout, classifier.SlowCallDuration is not null, _circuits.Registry.AttemptTimeouts, _timeProvider);
    }

    /// <summary>The attempt and the span of a probe about to be sent.</summary>
    private Attempt StartProbe(CircuitEntry circuit, in CircuitPermit permit, out Activity? probe)
    {
        probe = CircuitBreakerTracing.StartProbe(circuit); // a listener's fault costs the probe its span, not its call
        try
        {
            return StartAttempt(circuit);
        }
        catch
        {
            // Nothing was sent, so nothing is counted; but the probe's slot must go back, or the circuit would stay
            // half-open until someone resets it by hand. (Other permits hold nothing to give back.)
            CircuitBreakerTracing.Stop(probe, circuit);
            circuit.Machine.Release(permit);
            throw;
        }
    }

    private HttpResponseMessage SendThrough(HttpRequestMessage request, CircuitEntry circuit, CircuitPermit permit, CancellationToken cancellationToken)
    {
        Activity? probe = null;
        var attempt = permit.Kind == CircuitPermitKind.Probe ? StartProbe(circuit, permit, out probe) : StartAttempt(circuit);
        try
        {
            attempt.LinkCaller(cancellationToken); // the call below blocks this thread for as long as it takes
            var cacheable = _fallback.BeforeSend(request, circuit.Fallback); // before the handlers below change the request
            HttpResponseMessage response;
            try
            {
                response = base.Send(request, attempt.Token(cancellationToken));
            }
            catch (Exception ex) when (OnError(ex, circuit, permit, attempt, probe, cancellationToken) is { } translated)
            {
                // The filter records the outcome before unwinding; a null translation rethrows the original untouched.
                throw translated;
            }

            OnResponse(cacheable, response, circuit, permit, attempt, probe);
            return response;
        }
        finally
        {
            attempt.Dispose();
            CircuitBreakerTracing.Stop(probe, circuit);
        }
    }

    private void OnResponse(CacheableRequest? cacheable, HttpResponseMessage response, CircuitEntry circuit, in CircuitPermit permit, in Attempt attempt, Activity? probe)
    {
        if (response is null)
        {
            // A handler below that broke its contract, which HttpClient reports as it would without the breaker. It
            // says nothing about the host, but a probe's slot must go back, or the circuit would stay half-open for good.
            circuit.Machine.Release(permit);
            return;
        }

        // The breaker observes and never rewrites: a counted 5xx still goes back to the caller unchanged.
        var classifier = circuit.Classifier;
        var failure = classifier.IsFailure(response.StatusCode) ? HttpFailureClassifier.ErrorType(response.StatusCode)
            : classifier.SlowCallDuration is not null && classifier.IsSlow(attempt.Elapsed(_timeProvider)) ? HttpFailureClassifier.SlowErrorType
            : null;
        if (failure is not null)
        {
            Failed(circuit, permit, failure, probe, classifier.RequestedBreak(response, _timeProvider.GetUtcNow()));
            return;
        }

        CircuitBreakerTracing.ProbeSucceeded(probe);
        circuit.Machine.OnSuccess(permit);
        if (cacheable is not null)
        {
            _fallback.CaptureForCache(cacheable, response, circuit.Fallback);
        }
    }

    private void Failed(CircuitEntry circuit, in CircuitPermit permit, string errorType, Activity? probe, TimeSpan? requestedBreak = null)
    {
        // The circuit first: a metrics listener that throws must not keep the failure from it, which for a probe would
        // leave its slot taken and the circuit half-open for good.
        circuit.Machine.OnFailure(permit, errorType, requestedBreak);
        _circuits.Registry.Metrics.RecordFailure(circuit, errorType);
        CircuitBreakerTracing.ProbeFailed(probe, errorType);
    }

    /// <summary>Records the outcome of a call that threw, and returns the exception to throw instead, if any.</summary>
    private TaskCanceledException? OnError(Exception exception, CircuitEntry circuit, in CircuitPermit permit, in Attempt attempt, Activity? probe, CancellationToken callerToken)
    {
        if (exception is OperationCanceledException && attempt.TimedOut && !callerToken.IsCancellationRequested)
        {
            Failed(circuit, permit, HttpFailureClassifier.TimeoutErrorType, probe);
            var message = $"The request to {circuit.Key.Authority} was canceled because the circuit breaker's AttemptTimeout of {attempt.Timeout?.TotalSeconds} seconds elapsed.";
            return new TaskCanceledException(message, new TimeoutException(message, exception));
        }

        if (HttpFailureClassifier.IsTimeoutBelow(exception) && !callerToken.IsCancellationRequested)
        {
            // A timeout below the breaker that the caller did not ask for, such as SocketsHttpHandler.ConnectTimeout
            // against a host that drops connection attempts, or a resilience handler's: the host failed, as the fallback
            // chain judges it too. The exception is already the one a timeout should be, and goes on unchanged.
            Failed(circuit, permit, HttpFailureClassifier.TimeoutErrorType, probe);
        }
        else if (exception is HttpRequestException and not CircuitOpenException && exception.InnerException is not InvalidOperationException)
        {
            // Connection refused or reset, DNS failure, a broken response: the host failed. Not so an
            // InvalidOperationException that SocketsHttpHandler wraps in the same exception: the request's own content
            // failed, such as stream content already read by an earlier attempt (a retry above the breaker, or the
            // alternate backend, sends the same message again), and the host never had a chance to answer.
            Failed(circuit, permit, exception.GetType().FullName!, probe);
        }
        else
        {
            // The caller's own cancellation (including HttpClient.Timeout, which looks the same from here)
            // and faults that are not the host's say nothing about its health.
            circuit.Machine.Release(permit);
        }

        return null;
    }
}
