namespace CircuitBreaker.Http.Tests.TestSupport;

/// <summary>
/// What Polly's or Microsoft.Extensions.Http.Resilience's retry does above the breaker: the same message sent again
/// after a 5xx, with the same content.
/// </summary>
internal sealed class ResendOn5xxHandler : DelegatingHandler
{
    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var response = await base.SendAsync(request, cancellationToken);
        if ((int)response.StatusCode < 500)
        {
            return response;
        }

        response.Dispose();
        return await base.SendAsync(request, cancellationToken);
    }
}

/// <summary>
/// A body that can be read once, such as an incoming request's body a proxy forwards: <see cref="StreamContent"/> over it
/// cannot be sent a second time.
/// </summary>
internal sealed class ForwardOnlyStream(byte[] data) : MemoryStream(data, writable: false)
{
    public override bool CanSeek => false;
}
