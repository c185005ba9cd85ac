using System.Diagnostics;

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
        var circuit = CircuitOf(request);
        var permit = circuit.Machine.TryAcquire();
        return permit.IsGranted || Observed(circuit, permit)
            ? SendThroughAsync(request, circuit, permit, cancellationToken)
            : FallBackAsync(request, circuit, permit, cancellationToken);
    }

    /// <inheritdoc />
    protected override HttpResponseMessage Send(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var circuit = CircuitOf(request);
        var permit = circuit.Machine.TryAcquire();
        return permit.IsGranted || Observed(circuit, permit)
            ? SendThrough(request, circuit, permit, cancellationToken)
            : FallBack(request, circuit, permit, cancellationToken);
    }

    /// <summary>
    /// In observe-only mode (<see cref="CircuitBreakerOptions.Enforce"/> off) a call the circuit would turn away
    /// is counted and logged as such, then sent all the same; its outcome does not move the circuit, which goes
    /// on exactly as an enforcing one would. An isolated circuit still turns calls away.
    /// </summary>
    private bool Observed(CircuitEntry circuit, in CircuitPermit permit)
    {
        // Isolating a circuit is an operator's explicit order to stop its traffic, which observe-only does not override.
        if (circuit.Enforce || permit.RejectedState == CircuitState.Isolated)
        {
            return false;
        }

        _circuits.Registry.Metrics.RecordRejected(circuit, "none", enforced: false);
        Log.CallObserved(_circuits.Registry.Logger, circuit.Key.Authority, circuit.Key.ClientName, permit.RejectedState);
        return true;
    }

    private CircuitEntry CircuitOf(HttpRequestMessage request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var uri = request.RequestUri;
        if (uri is null || !uri.IsAbsoluteUri)
        {
            throw new InvalidOperationException("The request has no absolute RequestUri; set HttpClient.BaseAddress or use an absolute URI.");
        }

        return _circuits.GetOrCreate(uri);
    }

    private Task<HttpResponseMessage> SendThroughAsync(HttpRequestMessage request, CircuitEntry circuit, CircuitPermit permit, CancellationToken cancellationToken)
    {
        var probe = permit.Kind == CircuitPermitKind.Probe ? CircuitBreakerTracing.StartProbe(circuit) : null;
        var attempt = StartAttempt(circuit, cancellationToken);
        Task<HttpResponseMessage> sending;
        try
        {
            sending = base.SendAsync(request, attempt.Token);
        }
        catch (Exception ex)
        {
            sending = Task.FromException<HttpResponseMessage>(ex);
        }

        if (!sending.IsCompletedSuccessfully)
        {
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
        using (probe)
        using (attempt)
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
    }

    private Attempt StartAttempt(CircuitEntry circuit, CancellationToken cancellationToken)
    {
        var registry = _circuits.Registry;
        return new Attempt(circuit.Classifier.AttemptTimeout, registry.AttemptTimeouts, _timeProvider, cancellationToken);
    }

    private HttpResponseMessage SendThrough(HttpRequestMessage request, CircuitEntry circuit, CircuitPermit permit, CancellationToken cancellationToken)
    {
        using var probe = permit.Kind == CircuitPermitKind.Probe ? CircuitBreakerTracing.StartProbe(circuit) : null;
        using var attempt = StartAttempt(circuit, cancellationToken);
        HttpResponseMessage response;
        try
        {
            response = base.Send(request, attempt.Token);
        }
        catch (Exception ex) when (OnError(ex, circuit, permit, attempt, probe, cancellationToken) is { } translated)
        {
            // The filter records the outcome before unwinding; a null translation rethrows the original untouched.
            throw translated;
        }

        OnResponse(request, response, circuit, permit, attempt, probe);
        return response;
    }

    private async Task<HttpResponseMessage> FallBackAsync(HttpRequestMessage request, CircuitEntry circuit, CircuitPermit permit, CancellationToken cancellationToken)
    {
        using var rejection = CircuitBreakerTracing.StartRejection(circuit, permit.RejectedState);
        var response = await ChainAsync(request, circuit, permit, cancellationToken).ConfigureAwait(false);
        return Answered(response, circuit, permit, rejection);
    }

    private HttpResponseMessage FallBack(HttpRequestMessage request, CircuitEntry circuit, CircuitPermit permit, CancellationToken cancellationToken)
    {
        using var rejection = CircuitBreakerTracing.StartRejection(circuit, permit.RejectedState);
        return Answered(Chain(request, circuit, permit, cancellationToken), circuit, permit, rejection);
    }

    /// <summary>Accounts for a turned-away call: the fallback that answered it, or none and the exception.</summary>
    private HttpResponseMessage Answered(HttpResponseMessage? response, CircuitEntry circuit, in CircuitPermit permit, Activity? rejection)
    {
        var fallback = response is null ? "none" : response.Headers.GetValues(FallbackPolicy.FallbackHeaderName).First();
        var registry = _circuits.Registry;
        registry.Metrics.RecordRejected(circuit, fallback, enforced: true);
        Log.CallRejected(registry.Logger, circuit.Key.Authority, circuit.Key.ClientName, permit.RejectedState, fallback);
        rejection?.SetTag("circuit.fallback", fallback);
        if (response is null)
        {
            rejection?.SetStatus(ActivityStatusCode.Error, "circuit open");
            throw new CircuitOpenException(circuit.Key, permit.RejectedState, permit.RetryAfter);
        }

        return response;
    }

    /// <summary>The fallback chain: custom, cache, alternate backend, degraded; <see langword="null"/> when none answers.</summary>
    private async Task<HttpResponseMessage?> ChainAsync(HttpRequestMessage request, CircuitEntry circuit, CircuitPermit permit, CancellationToken cancellationToken)
    {
        var policy = circuit.Fallback;
        var entry = FromCache(request, policy);
        if (policy.OnOpen is { } onOpen)
        {
            // The delegate gets a copy of its own: whatever it does with it, the cache step below builds a fresh one.
            var offered = Replay(entry, request);
            var custom = await AskCustomAsync(onOpen, request, circuit, permit, offered, cancellationToken).ConfigureAwait(false);
            if (!ReferenceEquals(custom, offered))
            {
                offered?.Dispose();
            }

            if (custom is not null)
            {
                return FallbackPolicy.Mark(custom, "custom", permit.RetryAfter);
            }
        }

        if (Replay(entry, request) is { } cached)
        {
            return FallbackPolicy.Mark(cached, "cache", permit.RetryAfter);
        }

        if (TryMoveToAlternate(request, policy, out var alternate, out var alternatePermit, out var original))
        {
            try
            {
                var response = await SendThroughAsync(request, alternate, alternatePermit, cancellationToken).ConfigureAwait(false);
                return FallbackPolicy.Mark(response, "alternate", permit.RetryAfter);
            }
            catch (Exception ex) when (IsDownstreamFailure(ex, cancellationToken))
            {
                request.RequestUri = original; // the alternate failed too: go on down the chain
            }
        }

        return Degraded(request, circuit, permit);
    }

    /// <summary>The synchronous chain, for <see cref="HttpClient.Send(HttpRequestMessage)"/>: as the asynchronous one, without the asynchronous custom delegate.</summary>
    private HttpResponseMessage? Chain(HttpRequestMessage request, CircuitEntry circuit, CircuitPermit permit, CancellationToken cancellationToken)
    {
        var policy = circuit.Fallback;
        if (Replay(FromCache(request, policy), request) is { } cached)
        {
            return FallbackPolicy.Mark(cached, "cache", permit.RetryAfter);
        }

        if (TryMoveToAlternate(request, policy, out var alternate, out var alternatePermit, out var original))
        {
            try
            {
                return FallbackPolicy.Mark(SendThrough(request, alternate, alternatePermit, cancellationToken), "alternate", permit.RetryAfter);
            }
            catch (Exception ex) when (IsDownstreamFailure(ex, cancellationToken))
            {
                request.RequestUri = original;
            }
        }

        return Degraded(request, circuit, permit);
    }

    private HttpResponseMessage? Replay(CachedResponse? entry, HttpRequestMessage request) =>
        entry?.ToResponse(request, _timeProvider.GetUtcNow() - entry.StoredAt);

    private CachedResponse? FromCache(HttpRequestMessage request, FallbackPolicy policy)
    {
        if (!policy.CacheEnabled || _circuits.Cache is not { } cache || !ResponseCacheKey.IsCacheableRequest(request, policy.CacheExcludesCredentials))
        {
            return null;
        }

        try
        {
            return cache.Find(request, policy.CacheMaxAge, _timeProvider.GetUtcNow());
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
        CircuitPermit permit,
        HttpResponseMessage? cached,
        CancellationToken cancellationToken)
    {
        try
        {
            return await onOpen(new CircuitFallbackContext(request, circuit.Key, permit.RejectedState, permit.RetryAfter, cached, cancellationToken)).ConfigureAwait(false);
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

    private static HttpResponseMessage? Degraded(HttpRequestMessage request, CircuitEntry circuit, CircuitPermit permit) =>
        circuit.Fallback.Degraded is { } degraded
            ? FallbackPolicy.Mark(degraded.Create(request), "degraded", permit.RetryAfter)
            : null;

    private static bool IsDownstreamFailure(Exception exception, CancellationToken callerToken) =>
        exception is HttpRequestException
        || (exception is TaskCanceledException { InnerException: TimeoutException } && !callerToken.IsCancellationRequested);

    private void OnResponse(HttpRequestMessage request, HttpResponseMessage response, CircuitEntry circuit, in CircuitPermit permit, in Attempt attempt, Activity? probe)
    {
        // The breaker observes and never rewrites: a counted 5xx still goes back to the caller unchanged.
        var classifier = circuit.Classifier;
        var failure = classifier.IsFailure(response.StatusCode) ? HttpFailureClassifier.ErrorType(response.StatusCode)
            : classifier.IsSlow(attempt.Elapsed) ? HttpFailureClassifier.SlowErrorType
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
                var capture = new ResponseCapture(cache, ResponseCacheKey.For(request), response, ResponseCacheKey.Vary(response, request), policy.CacheMaxEntryBytes, _timeProvider);
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
