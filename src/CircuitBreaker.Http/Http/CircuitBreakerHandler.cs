namespace CircuitBreaker.Http;

/// <summary>
/// The circuit breaker in the <c>IHttpClientFactory</c> pipeline. It is thin on purpose: it finds the
/// circuit of the request's authority in the registry, asks it for a permit, sends the request under
/// <see cref="CircuitBreakerOptions.AttemptTimeout"/>, and reports the outcome. Add it with
/// <c>AddCircuitBreaker()</c>; its state lives in the registry, so rebuilt handlers lose nothing.
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
    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var (circuit, permit) = Enter(request);
        using var attempt = new Attempt(circuit.Classifier.AttemptTimeout, _timeProvider, cancellationToken);
        HttpResponseMessage response;
        try
        {
            response = await base.SendAsync(request, attempt.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (OnError(ex, circuit, permit, attempt, cancellationToken) is { } translated)
        {
            throw translated;
        }

        OnResponse(response, circuit, permit, attempt);
        return response;
    }

    /// <inheritdoc />
    protected override HttpResponseMessage Send(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var (circuit, permit) = Enter(request);
        using var attempt = new Attempt(circuit.Classifier.AttemptTimeout, _timeProvider, cancellationToken);
        HttpResponseMessage response;
        try
        {
            response = base.Send(request, attempt.Token);
        }
        catch (Exception ex) when (OnError(ex, circuit, permit, attempt, cancellationToken) is { } translated)
        {
            throw translated;
        }

        OnResponse(response, circuit, permit, attempt);
        return response;
    }

    private (CircuitEntry Circuit, CircuitPermit Permit) Enter(HttpRequestMessage request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var uri = request.RequestUri;
        if (uri is null || !uri.IsAbsoluteUri)
        {
            throw new InvalidOperationException("The request has no absolute RequestUri; set HttpClient.BaseAddress or use an absolute URI.");
        }

        var circuit = _circuits.GetOrCreate(uri);
        var permit = circuit.Machine.TryAcquire();
        if (!permit.IsGranted)
        {
            // The seam where fallbacks (cached, degraded, alternate responses) will answer instead.
            throw new CircuitOpenException(circuit.Key, permit.RejectedState, permit.RetryAfter);
        }

        return (circuit, permit);
    }

    private static void OnResponse(HttpResponseMessage response, CircuitEntry circuit, in CircuitPermit permit, in Attempt attempt)
    {
        // The breaker observes and never rewrites: a counted 5xx still goes back to the caller unchanged.
        var classifier = circuit.Classifier;
        if (classifier.IsFailure(response.StatusCode) || classifier.IsSlow(attempt.Elapsed))
        {
            circuit.Machine.OnFailure(permit);
        }
        else
        {
            circuit.Machine.OnSuccess(permit);
        }
    }

    /// <summary>Records the outcome of a call that threw, and returns the exception to throw instead, if any.</summary>
    private static TaskCanceledException? OnError(Exception exception, CircuitEntry circuit, in CircuitPermit permit, in Attempt attempt, CancellationToken callerToken)
    {
        if (exception is OperationCanceledException && attempt.TimedOut && !callerToken.IsCancellationRequested)
        {
            circuit.Machine.OnFailure(permit);
            var message = $"The request to {circuit.Key.Authority} was canceled because the circuit breaker's AttemptTimeout of {attempt.Timeout?.TotalSeconds} seconds elapsed.";
            return new TaskCanceledException(message, new TimeoutException(message, exception));
        }

        if (exception is HttpRequestException and not CircuitOpenException)
        {
            // Connection refused or reset, DNS failure, a broken response: the host failed.
            circuit.Machine.OnFailure(permit);
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
