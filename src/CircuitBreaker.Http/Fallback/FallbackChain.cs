using System.Diagnostics;

namespace CircuitBreaker.Http;

/// <summary>A call sent through a circuit that granted it a permit: the handler's own send path, for the alternate backend.</summary>
internal delegate Task<HttpResponseMessage> SendThroughAsync(HttpRequestMessage request, CircuitEntry circuit, CircuitPermit permit, CancellationToken cancellationToken);

/// <summary>The synchronous <see cref="SendThroughAsync"/>.</summary>
internal delegate HttpResponseMessage SendThrough(HttpRequestMessage request, CircuitEntry circuit, CircuitPermit permit, CancellationToken cancellationToken);

/// <summary>
/// What answers a call that a circuit or a limit turned away, for one client's handler: the custom delegate, the
/// cached last good response, the alternate backend, the degraded response, in that order, or the exception when
/// none does; the accounting of the rejection (metric, log, span); and, on the way back from a good call, the
/// capture of its response for the cache.
/// </summary>
internal sealed class FallbackChain
{
    private readonly ClientCircuits _circuits;
    private readonly SendThroughAsync _sendAsync;
    private readonly SendThrough _send;

    public FallbackChain(ClientCircuits circuits, SendThroughAsync sendAsync, SendThrough send)
    {
        _circuits = circuits;
        _sendAsync = sendAsync;
        _send = send;
    }

    /// <summary>Answers a call that was turned away, asynchronously: the whole chain.</summary>
    public Task<HttpResponseMessage> FallBackAsync(HttpRequestMessage request, CircuitEntry circuit, Rejection rejection, CancellationToken cancellationToken)
    {
        var policy = circuit.Fallback;
        if (policy.OnOpen is not null || policy.AlternateBaseAddress is not null)
        {
            return FallBackSlowAsync(request, circuit, rejection, cancellationToken);
        }

        // Only the cache and the degraded answer, which need no waiting: answered here, with no state machine,
        // and a call nothing answers fails its task without a throw (the caller's await throws it once).
        var span = CircuitBreakerTracing.StartRejection(circuit, rejection);
        try
        {
            var (response, kind) = ReplayFromCache(request, policy) is { } cached
                ? (FallbackPolicy.MarkFresh(cached, FallbackPolicy.CacheKind, rejection.RetryAfter), FallbackPolicy.CacheKind)
                : DegradedOrNone(request, circuit, rejection);
            return Answered(response, kind, circuit, rejection, span) is { } exception
                ? Task.FromException<HttpResponseMessage>(exception)
                : Task.FromResult(response!);
        }
        finally
        {
            CircuitBreakerTracing.Stop(span, circuit);
        }
    }

    private async Task<HttpResponseMessage> FallBackSlowAsync(HttpRequestMessage request, CircuitEntry circuit, Rejection rejection, CancellationToken cancellationToken)
    {
        var span = CircuitBreakerTracing.StartRejection(circuit, rejection);
        try
        {
            var (response, kind) = await ChainAsync(request, circuit, rejection, cancellationToken).ConfigureAwait(false);
            return Answered(response, kind, circuit, rejection, span) is { } exception ? throw exception : response!;
        }
        finally
        {
            CircuitBreakerTracing.Stop(span, circuit);
        }
    }

    /// <summary>Answers a call that was turned away, for <see cref="HttpClient.Send(HttpRequestMessage)"/>: the chain without the asynchronous custom delegate.</summary>
    public HttpResponseMessage FallBack(HttpRequestMessage request, CircuitEntry circuit, Rejection rejection, CancellationToken cancellationToken)
    {
        var span = CircuitBreakerTracing.StartRejection(circuit, rejection);
        try
        {
            var (response, kind) = Chain(request, circuit, rejection, cancellationToken);
            return Answered(response, kind, circuit, rejection, span) is { } exception ? throw exception : response!;
        }
        finally
        {
            CircuitBreakerTracing.Stop(span, circuit);
        }
    }

    /// <summary>
    /// Accounts for a call that was not sent: the fallback that answered it, or none. Returns the exception the
    /// caller gets when none did, for the caller to throw or to fail its task with.
    /// </summary>
    private HttpRequestException? Answered(HttpResponseMessage? response, string fallback, CircuitEntry circuit, in Rejection rejection, Activity? span)
    {
        var registry = _circuits.Registry;
        registry.Metrics.RecordRejected(circuit, fallback, rejection.Reason, enforced: true);
        Log.CallRejected(registry.Logger, circuit, rejection.State, rejection.Reason, fallback);
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

    /// <summary>
    /// Accounts for a call to the alternate backend that the alternate host's own limits shed (or whose circuit opened
    /// while it waited in the alternate's bulkhead queue), and returns what it fails with: a
    /// <see cref="LoadSheddingException"/> (or <see cref="CircuitOpenException"/>), which the chain takes as an
    /// unavailable alternate. The call the caller made is accounted for once the chain has answered it.
    /// </summary>
    public HttpRequestException AlternateShed(CircuitEntry alternate, in Rejection shed)
    {
        var registry = _circuits.Registry;
        registry.Metrics.RecordRejected(alternate, FallbackPolicy.NoneKind, shed.Reason, enforced: true);
        Log.CallRejected(registry.Logger, alternate, shed.State, shed.Reason, FallbackPolicy.NoneKind);
        return shed.ToException(alternate.Key);
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
            if (custom is null)
            {
                offered?.Dispose();
            }
            else
            {
                // The answer may be the offered copy itself, or built from it (its Content, or a stream read from it),
                // which disposing the copy would dispose under the caller. The copy holds only memory (the cached
                // bytes), so it is left to the collector rather than disposed.
                // A response built with new HttpResponseMessage(...) has no RequestMessage, which every other answer
                // the caller gets (the server's, and every other fallback's) carries.
                custom.RequestMessage ??= request;
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
                // No response at all comes only from a handler below that broke its contract: the alternate did not answer.
                if (await _sendAsync(request, alternate, alternatePermit, cancellationToken).ConfigureAwait(false) is { } response)
                {
                    return (FallbackPolicy.Mark(response, FallbackPolicy.AlternateKind, rejection.RetryAfter), FallbackPolicy.AlternateKind);
                }
            }
            catch (Exception ex) when (IsDownstreamFailure(ex, cancellationToken))
            {
                // the alternate failed too: go on down the chain
            }
            finally
            {
                // Whatever the outcome: a retry handler above the breaker re-sends this same message, which must go
                // through the primary's circuit (and its fallback mark) again, not straight to the alternate.
                request.RequestUri = original;
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
                if (_send(request, alternate, alternatePermit, cancellationToken) is { } response) // as in the asynchronous chain
                {
                    return (FallbackPolicy.Mark(response, FallbackPolicy.AlternateKind, rejection.RetryAfter), FallbackPolicy.AlternateKind);
                }
            }
            catch (Exception ex) when (IsDownstreamFailure(ex, cancellationToken))
            {
                // the alternate failed too: go on down the chain
            }
            finally
            {
                request.RequestUri = original; // as in the asynchronous chain: a re-sent message must meet the primary's circuit
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
            CacheFailed(ex, request.RequestUri!);
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
            return await onOpen(new CircuitFallbackContext(request, circuit.Key, rejection.State, rejection.RetryAfter, rejection.Shed, cached, cancellationToken)).ConfigureAwait(false);
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
            ? FallbackPolicy.MarkFresh(degraded.Create(request), FallbackPolicy.DegradedKind, rejection.RetryAfter, degraded.RetryAfter)
            : null;

    private static bool IsDownstreamFailure(Exception exception, CancellationToken callerToken) =>
        exception is HttpRequestException
        || (HttpFailureClassifier.IsTimeoutBelow(exception) && !callerToken.IsCancellationRequested);

    /// <summary>
    /// What the cache needs of a request about to be sent, taken before the handlers below change it, when the
    /// circuit's policy caches and the request allows it; <see langword="null"/> otherwise, which costs nothing.
    /// </summary>
    public CacheableRequest? BeforeSend(HttpRequestMessage request, FallbackPolicy policy) =>
        policy.CacheEnabled && _circuits.Cache is not null ? Snapshot(request, policy) : null;

    private CacheableRequest? Snapshot(HttpRequestMessage request, FallbackPolicy policy)
    {
        try
        {
            return CacheableRequest.Of(request, policy.CacheExcludesCredentials);
        }
#pragma warning disable CA1031 // A fault in the cache must never fail a request.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            CacheFailed(ex, request.RequestUri!);
            return null;
        }
    }

    /// <summary>
    /// Wraps a good response's body so that the cache gets a copy as the caller reads it, when the circuit's
    /// policy still caches and the response allows it. The request is judged, keyed and varied as
    /// <see cref="BeforeSend"/> saw it, as the lookup sees it.
    /// </summary>
    public void CaptureForCache(CacheableRequest request, HttpResponseMessage response, FallbackPolicy policy)
    {
        if (policy.CacheEnabled && _circuits.Cache is { } cache)
        {
            Capture(request, response, policy, cache);
        }
    }

    private void Capture(CacheableRequest request, HttpResponseMessage response, FallbackPolicy policy, ResponseCache cache)
    {
        try
        {
            // The policy may have been reloaded while the call was out: credentials excluded now are not stored.
            if (!ResponseCacheKey.IsCacheableResponse(response) || (policy.CacheExcludesCredentials && request.HasCredentials))
            {
                return;
            }

            // Taken now, as the response passes the breaker (see ResponseHead). A response that arrived already older than
            // MaxAge (a CDN's), or than its own headers let it be replayed, could never be replayed, and storing it would
            // replace the good entry of its URL.
            var head = new ResponseHead(response);
            if (head.ReceivedAge < policy.CacheMaxAge && head.ReceivedAge < head.MaxReplayAge)
            {
                var capture = new ResponseCapture(cache, request.Key(), head, request.Vary(response), policy.CacheMaxEntryBytes, bodiless: request.IsHead);
                if (request.IsHead)
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
            CacheFailed(ex, request.Uri);
        }
    }

    // The circuit's own form of the authority (scheme://host:port), as every other event names the host.
    private void CacheFailed(Exception exception, Uri uri) =>
        Log.FallbackFailed(_circuits.Registry.Logger, exception, "cache", new HostKey(uri).Authority, _circuits.ClientName);
}
