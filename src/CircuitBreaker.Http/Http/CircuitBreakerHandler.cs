using System.Diagnostics;
using System.Threading.RateLimiting;

namespace CircuitBreaker.Http;

/// <summary>
/// The circuit breaker in the <c>IHttpClientFactory</c> pipeline. It is thin on purpose: it finds the
/// circuit of the request's authority in the registry, asks it for a permit, sends the request under
/// <see cref="CircuitBreakerOptions.AttemptTimeout"/> and reports the outcome; a call the circuit turns away
/// goes down the fallback chain. Add it with <c>AddCircuitBreaker()</c>; its state lives in the registry, so
/// rebuilt handlers lose nothing.
/// </summary>
public sealed class CircuitBreakerHandler : DelegatingHandler
{
    private readonly ClientCircuits _circuits;
    private readonly TimeProvider _timeProvider;

    internal CircuitBreakerHandler(ClientCircuits circuits, TimeProvider timeProvider)
    {
        _circuits = circuits;
        _timeProvider = timeProvider;
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
            return FallBackAsync(request, circuit, Rejection.ByCircuit(permit), cancellationToken);
        }

        return circuit.Limits is { } limits
            ? SendWithinLimitsAsync(request, circuit, permit, limits, cancellationToken)
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
            return FallBack(request, circuit, Rejection.ByCircuit(permit), cancellationToken);
        }

        if (circuit.Limits is not { } limits)
        {
            return SendThrough(request, circuit, permit, cancellationToken);
        }

        // The synchronous path cannot wait in the bulkhead's queue: beyond the limit, calls are shed at once.
        if (Shed(circuit, permit, limits, out var shed))
        {
            return FallBack(request, circuit, shed, cancellationToken);
        }

        using var lease = limits.HasConcurrencyLimit ? limits.Enter() : null;
        if (lease is { IsAcquired: false } && !Observed(circuit, Rejection.ByLimit(LoadSheddingReason.Concurrency)))
        {
            circuit.Machine.Release(permit);
            return FallBack(request, circuit, Rejection.ByLimit(LoadSheddingReason.Concurrency), cancellationToken);
        }

        return SendThrough(request, circuit, permit, cancellationToken);
    }

    /// <summary>
    /// Sends a call the circuit let through within the host's limits: the slow start after recovery, the
    /// throttle, then the bulkhead (waiting in its queue when it has room). A shed call gives its permit back
    /// uncounted, as the host did nothing wrong, and takes the fallback chain.
    /// </summary>
    private async Task<HttpResponseMessage> SendWithinLimitsAsync(HttpRequestMessage request, CircuitEntry circuit, CircuitPermit permit, CircuitLimits limits, CancellationToken cancellationToken)
    {
        if (Shed(circuit, permit, limits, out var shed))
        {
            return await FallBackAsync(request, circuit, shed, cancellationToken).ConfigureAwait(false);
        }

        if (!limits.HasConcurrencyLimit)
        {
            return await SendThroughAsync(request, circuit, permit, cancellationToken).ConfigureAwait(false);
        }

        RateLimitLease lease;
        try
        {
            lease = await limits.EnterAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            circuit.Machine.Release(permit); // the caller gave up while queued
            throw;
        }

        using (lease)
        {
            if (!lease.IsAcquired && !Observed(circuit, Rejection.ByLimit(LoadSheddingReason.Concurrency)))
            {
                circuit.Machine.Release(permit);
                return await FallBackAsync(request, circuit, Rejection.ByLimit(LoadSheddingReason.Concurrency), cancellationToken).ConfigureAwait(false);
            }

            return await SendThroughAsync(request, circuit, permit, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>The slow start and the throttle, which need no waiting; true when one of them sheds the call.</summary>
    private bool Shed(CircuitEntry circuit, in CircuitPermit permit, CircuitLimits limits, out Rejection shed)
    {
        shed = default;
        if (permit.Kind == CircuitPermitKind.Closed && !limits.AdmitDuringRampUp(circuit.Machine.RecoveredAt))
        {
            shed = Rejection.ByLimit(LoadSheddingReason.RampUp);
        }
        else if (!limits.TryThrottle(out var retryAfter))
        {
            shed = Rejection.ByLimit(LoadSheddingReason.Throttle, retryAfter);
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
        Log.CallObserved(_circuits.Registry.Logger, circuit.Key.Authority, circuit.Key.ClientName, rejection.State);
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
        var probe = permit.Kind == CircuitPermitKind.Probe ? CircuitBreakerTracing.StartProbe(circuit) : null;
        var attempt = StartAttempt(circuit);

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

            return CompleteAsync(sending, request, circuit, permit, attempt, probe, cancellationToken);
        }

        // Answered synchronously (a cache or stub below): hand back the same task, with no state machine.
        using (probe)
        using (attempt)
        {
            OnResponse(request, sending.Result, circuit, permit, attempt, probe);
        }

        return sending;
    }

    private async Task<HttpResponseMessage> CompleteAsync(
        Task<HttpResponseMessage> sending,
        HttpRequestMessage request,
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

            OnResponse(request, response, circuit, permit, attempt, probe);
            return response;
        }
        finally
        {
            attempt.Dispose();
            probe?.Dispose();
        }
    }

    private Attempt StartAttempt(CircuitEntry circuit)
    {
        var classifier = circuit.Classifier;
        return new Attempt(classifier.AttemptTimeout, classifier.SlowCallDuration is not null, _circuits.Registry.AttemptTimeouts, _timeProvider);
    }

    private HttpResponseMessage SendThrough(HttpRequestMessage request, CircuitEntry circuit, CircuitPermit permit, CancellationToken cancellationToken)
    {
        using var probe = permit.Kind == CircuitPermitKind.Probe ? CircuitBreakerTracing.StartProbe(circuit) : null;
        using var attempt = StartAttempt(circuit);
        attempt.LinkCaller(cancellationToken); // the call below blocks this thread for as long as it takes
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

        OnResponse(request, response, circuit, permit, attempt, probe);
        return response;
    }

    private Task<HttpResponseMessage> FallBackAsync(HttpRequestMessage request, CircuitEntry circuit, Rejection rejection, CancellationToken cancellationToken)
    {
        var policy = circuit.Fallback;
        if (policy.OnOpen is not null || policy.AlternateBaseAddress is not null)
        {
            return FallBackSlowAsync(request, circuit, rejection, cancellationToken);
        }

        // Only the cache and the degraded answer, which need no waiting: answered here, with no state machine,
        // and a call nothing answers fails its task without a throw (the caller's await throws it once).
        using var span = CircuitBreakerTracing.StartRejection(circuit, rejection);
        var (response, kind) = ReplayFromCache(request, policy) is { } cached
            ? (FallbackPolicy.MarkFresh(cached, FallbackPolicy.CacheKind, rejection.RetryAfter), FallbackPolicy.CacheKind)
            : DegradedOrNone(request, circuit, rejection);
        return Answered(response, kind, circuit, rejection, span) is { } exception
            ? Task.FromException<HttpResponseMessage>(exception)
            : Task.FromResult(response!);
    }

    private async Task<HttpResponseMessage> FallBackSlowAsync(HttpRequestMessage request, CircuitEntry circuit, Rejection rejection, CancellationToken cancellationToken)
    {
        using var span = CircuitBreakerTracing.StartRejection(circuit, rejection);
        var (response, kind) = await ChainAsync(request, circuit, rejection, cancellationToken).ConfigureAwait(false);
        return Answered(response, kind, circuit, rejection, span) is { } exception ? throw exception : response!;
    }

    private HttpResponseMessage FallBack(HttpRequestMessage request, CircuitEntry circuit, Rejection rejection, CancellationToken cancellationToken)
    {
        using var span = CircuitBreakerTracing.StartRejection(circuit, rejection);
        var (response, kind) = Chain(request, circuit, rejection, cancellationToken);
        return Answered(response, kind, circuit, rejection, span) is { } exception ? throw exception : response!;
    }

    /// <summary>
    /// Accounts for a call that was not sent: the fallback that answered it, or none. Returns the exception the
    /// caller gets when none did, for the caller to throw or to fail its task with.
    /// </summary>
    private HttpRequestException? Answered(HttpResponseMessage? response, string fallback, CircuitEntry circuit, in Rejection rejection, Activity? span)
    {
        var registry = _circuits.Registry;
        registry.Metrics.RecordRejected(circuit, fallback, rejection.Reason, enforced: true);
        Log.CallRejected(registry.Logger, circuit.Key.Authority, circuit.Key.ClientName, rejection.State, rejection.Reason, fallback);
        if (span is not null)
        {
            span.SetTag("circuit.fallback", fallback);
            if (response is null)
            {
                span.SetStatus(ActivityStatusCode.Error, rejection.Shed is null ? "circuit open" : "load shed");
            }
        }

        return response is null ? rejection.ToException(circuit.Key) : null;
    }

    /// <summary>The fallback chain: custom, cache, alternate backend, degraded; a <see langword="null"/> response when none answers.</summary>
    private async Task<(HttpResponseMessage? Response, string Kind)> ChainAsync(HttpRequestMessage request, CircuitEntry circuit, Rejection rejection, CancellationToken cancellationToken)
    {
        var policy = circuit.Fallback;
        var cache = policy.CacheEnabled ? _circuits.Cache : null;
        var entry = cache is null ? null : FromCache(request, policy, cache, cache.Clock.Now);
        if (policy.OnOpen is { } onOpen)
        {
            // The delegate gets a copy of its own: whatever it does with it, the cache step below builds a fresh one.
            var offered = entry is null ? null : Replay(entry, request, cache!, cache!.Clock.Now);
            var custom = await AskCustomAsync(onOpen, request, circuit, rejection, offered, cancellationToken).ConfigureAwait(false);
            if (!ReferenceEquals(custom, offered))
            {
                offered?.Dispose();
            }

            if (custom is not null)
            {
                return (FallbackPolicy.Mark(custom, FallbackPolicy.CustomKind, rejection.RetryAfter), FallbackPolicy.CustomKind);
            }
        }

        if (entry is not null && Replay(entry, request, cache!, cache!.Clock.Now) is { } cached)
        {
            return (FallbackPolicy.MarkFresh(cached, FallbackPolicy.CacheKind, rejection.RetryAfter), FallbackPolicy.CacheKind);
        }

        if (TryMoveToAlternate(request, policy, out var alternate, out var alternatePermit, out var original))
        {
            try
            {
                var response = await SendThroughAsync(request, alternate, alternatePermit, cancellationToken).ConfigureAwait(false);
                return (FallbackPolicy.Mark(response, FallbackPolicy.AlternateKind, rejection.RetryAfter), FallbackPolicy.AlternateKind);
            }
            catch (Exception ex) when (IsDownstreamFailure(ex, cancellationToken))
            {
                request.RequestUri = original; // the alternate failed too: go on down the chain
            }
        }

        return DegradedOrNone(request, circuit, rejection);
    }

    /// <summary>The synchronous chain, for <see cref="HttpClient.Send(HttpRequestMessage)"/>: as the asynchronous one, without the asynchronous custom delegate.</summary>
    private (HttpResponseMessage? Response, string Kind) Chain(HttpRequestMessage request, CircuitEntry circuit, Rejection rejection, CancellationToken cancellationToken)
    {
        var policy = circuit.Fallback;
        if (ReplayFromCache(request, policy) is { } cached)
        {
            return (FallbackPolicy.MarkFresh(cached, FallbackPolicy.CacheKind, rejection.RetryAfter), FallbackPolicy.CacheKind);
        }

        if (TryMoveToAlternate(request, policy, out var alternate, out var alternatePermit, out var original))
        {
            try
            {
                return (FallbackPolicy.Mark(SendThrough(request, alternate, alternatePermit, cancellationToken), FallbackPolicy.AlternateKind, rejection.RetryAfter), FallbackPolicy.AlternateKind);
            }
            catch (Exception ex) when (IsDownstreamFailure(ex, cancellationToken))
            {
                request.RequestUri = original;
            }
        }

        return DegradedOrNone(request, circuit, rejection);
    }

    private static (HttpResponseMessage? Response, string Kind) DegradedOrNone(HttpRequestMessage request, CircuitEntry circuit, in Rejection rejection) =>
        Degraded(request, circuit, rejection) is { } degraded ? (degraded, FallbackPolicy.DegradedKind) : (null, FallbackPolicy.NoneKind);

    /// <summary>The cached response, if any, replayed at once: one clock read serves the lookup and the age.</summary>
    private HttpResponseMessage? ReplayFromCache(HttpRequestMessage request, FallbackPolicy policy)
    {
        if (!policy.CacheEnabled || _circuits.Cache is not { } cache)
        {
            return null;
        }

        var now = cache.Clock.Now;
        return Replay(FromCache(request, policy, cache, now), request, cache, now);
    }

    /// <summary>The cached response replayed with its age at <paramref name="now"/>.</summary>
    private static HttpResponseMessage? Replay(CachedResponse? entry, HttpRequestMessage request, ResponseCache cache, long now) =>
        entry?.ToResponse(request, cache.AgeOf(entry, now));

    private CachedResponse? FromCache(HttpRequestMessage request, FallbackPolicy policy, ResponseCache cache, long now)
    {
        if (!ResponseCacheKey.IsCacheableRequest(request, policy.CacheExcludesCredentials))
        {
            return null;
        }

        try
        {
            return cache.Find(request, policy.CacheMaxAge, now, knownWithoutCredentials: policy.CacheExcludesCredentials);
        }
#pragma warning disable CA1031 // A fault in the cache must not turn a possible fallback into a failure.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            Log.FallbackFailed(_circuits.Registry.Logger, ex, "cache", request.RequestUri!.Authority, _circuits.ClientName);
            return null;
        }
    }

    private async Task<HttpResponseMessage?> AskCustomAsync(
        Func<CircuitFallbackContext, ValueTask<HttpResponseMessage?>> onOpen,
        HttpRequestMessage request,
        CircuitEntry circuit,
        Rejection rejection,
        HttpResponseMessage? cached,
        CancellationToken cancellationToken)
    {
        try
        {
            return await onOpen(new CircuitFallbackContext(request, circuit.Key, rejection.State, rejection.RetryAfter, cached, cancellationToken)).ConfigureAwait(false);
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
        {
            Log.FallbackFailed(_circuits.Registry.Logger, ex, "custom", circuit.Key.Authority, circuit.Key.ClientName);
            return null;
        }
    }

    private bool TryMoveToAlternate(HttpRequestMessage request, FallbackPolicy policy, out CircuitEntry alternate, out CircuitPermit alternatePermit, out Uri original)
    {
        original = request.RequestUri!;
        alternate = null!;
        alternatePermit = default;
        if (policy.AlternateBaseAddress is null)
        {
            return false;
        }

        var target = policy.AlternateFor(original);
        alternate = _circuits.GetOrCreate(target);
        alternatePermit = alternate.Machine.TryAcquire();
        if (!alternatePermit.IsGranted)
        {
            return false; // the alternate's own circuit is open too
        }

        request.RequestUri = target;
        return true;
    }

    private static HttpResponseMessage? Degraded(HttpRequestMessage request, CircuitEntry circuit, in Rejection rejection) =>
        circuit.Fallback.Degraded is { } degraded
            ? FallbackPolicy.MarkFresh(degraded.Create(request), FallbackPolicy.DegradedKind, rejection.RetryAfter)
            : null;

    private static bool IsDownstreamFailure(Exception exception, CancellationToken callerToken) =>
        exception is HttpRequestException
        || (exception is TaskCanceledException { InnerException: TimeoutException } && !callerToken.IsCancellationRequested);

    private void OnResponse(HttpRequestMessage request, HttpResponseMessage response, CircuitEntry circuit, in CircuitPermit permit, in Attempt attempt, Activity? probe)
    {
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
        var fallback = circuit.Fallback;
        if (fallback.CacheEnabled && _circuits.Cache is { } cache)
        {
            CaptureForCache(request, response, fallback, cache);
        }
    }

    private void CaptureForCache(HttpRequestMessage request, HttpResponseMessage response, FallbackPolicy policy, ResponseCache cache)
    {
        try
        {
            if (ResponseCacheKey.IsCacheableRequest(request, policy.CacheExcludesCredentials) && ResponseCacheKey.IsCacheableResponse(response))
            {
                var capture = new ResponseCapture(cache, ResponseCacheKey.For(request), response, ResponseCacheKey.Vary(response, request), policy.CacheMaxEntryBytes);
                if (request.Method == HttpMethod.Head)
                {
                    capture.Complete(); // no body will ever be read: the headers are the whole response
                }
                else
                {
                    response.Content = new CapturingContent(response.Content, capture);
                }
            }
        }
#pragma warning disable CA1031 // A fault in the cache must never fail a request that succeeded.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            Log.FallbackFailed(_circuits.Registry.Logger, ex, "cache", request.RequestUri!.Authority, _circuits.ClientName);
        }
    }

    private void Failed(CircuitEntry circuit, in CircuitPermit permit, string errorType, Activity? probe, TimeSpan? requestedBreak = null)
    {
        _circuits.Registry.Metrics.RecordFailure(circuit, errorType);
        CircuitBreakerTracing.ProbeFailed(probe, errorType);
        circuit.Machine.OnFailure(permit, errorType, requestedBreak);
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

        if (exception is HttpRequestException and not CircuitOpenException)
        {
            // Connection refused or reset, DNS failure, a broken response: the host failed.
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
