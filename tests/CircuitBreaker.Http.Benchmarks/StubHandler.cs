using System.Net;

namespace CircuitBreaker.Http.Benchmarks;

/// <summary>
/// The primary handler of every benchmark client: it answers at once, synchronously, with a new response of
/// <see cref="StatusCode"/> and no body (or <see cref="Body"/> while a setup primes a cache). Every benchmark,
/// with or without a breaker, goes through the same stub, so their differences are the breakers' costs. It
/// writes no shared state, so that concurrent callers do not contend on it.
/// </summary>
public sealed class StubHandler : HttpMessageHandler
{
    /// <summary>Gets or sets the status of the next responses; setups set 500 for a moment to open circuits.</summary>
    public HttpStatusCode StatusCode { get; set; } = HttpStatusCode.OK;

    /// <summary>Gets or sets a body for the next responses; <see langword="null"/> (the default) sends none.</summary>
    public byte[]? Body { get; set; }

    /// <summary>
    /// Gets or sets whether <see cref="SendAsync"/> completes asynchronously (after a yield), as a real network
    /// handler does. A synchronous answer lets every handler above it skip its own asynchronous completion, which
    /// hides what that costs.
    /// </summary>
    public bool Asynchronous { get; init; }

    protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) =>
        Asynchronous ? RespondLaterAsync(request) : Task.FromResult(Respond(request));

    protected override HttpResponseMessage Send(HttpRequestMessage request, CancellationToken cancellationToken) => Respond(request);

    private async Task<HttpResponseMessage> RespondLaterAsync(HttpRequestMessage request)
    {
        await Task.Yield();
        return Respond(request);
    }

    private HttpResponseMessage Respond(HttpRequestMessage request)
    {
        var response = new HttpResponseMessage(StatusCode) { RequestMessage = request };
        if (Body is { } body)
        {
            response.Content = new ByteArrayContent(body);
            response.Content.Headers.TryAddWithoutValidation("Content-Type", "application/json");
        }

        return response;
    }
}
