using System.Net;
using Microsoft.Extensions.DependencyInjection;

namespace CircuitBreaker.Http.Tests.TestSupport;

/// <summary>
/// Bytes allocated per request through a named client from <c>IHttpClientFactory</c> whose primary handler answers at
/// once, synchronously: every handler completes on the calling thread, so <see cref="GC.GetAllocatedBytesForCurrentThread"/>
/// counts the whole request. Tests compare two configurations, which cancels what the client itself allocates.
/// </summary>
internal static class RequestAllocations
{
    private static readonly Uri Target = new("http://users.test/users/42");

    /// <param name="configure">Adds the breaker (or not) to the client.</param>
    /// <param name="sync">Whether to send with <see cref="HttpClient.Send(HttpRequestMessage)"/> rather than <see cref="HttpClient.SendAsync(HttpRequestMessage)"/>.</param>
    /// <param name="services">Adds services (listeners, logging) before the provider is built.</param>
    /// <param name="setup">Prepares the circuit before the requests (opens it, say), with the stub to set the status it answers with.</param>
    /// <param name="count">How many requests are measured, after as many for warm-up.</param>
    /// <returns>The bytes allocated per request.</returns>
    public static double PerRequest(
        Action<IHttpClientBuilder> configure,
        bool sync = false,
        Action<IServiceCollection>? services = null,
        Action<HttpClient, SynchronousStub>? setup = null,
        int count = 2_000)
    {
        var stub = new SynchronousStub();
        var collection = new ServiceCollection();
        var client = collection.AddHttpClient("client")
            .ConfigurePrimaryHttpMessageHandler(() => stub)
            .SetHandlerLifetime(Timeout.InfiniteTimeSpan);
        configure(client);
        services?.Invoke(collection);
        using var provider = collection.BuildServiceProvider();
        var http = provider.GetRequiredService<IHttpClientFactory>().CreateClient("client");
        setup?.Invoke(http, stub);

        Send(http, sync, count);
        var before = GC.GetAllocatedBytesForCurrentThread();
        Send(http, sync, count);
        return (GC.GetAllocatedBytesForCurrentThread() - before) / (double)count;
    }

    private static void Send(HttpClient http, bool sync, int count)
    {
        for (var i = 0; i < count; i++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, Target);
            if (sync)
            {
                http.Send(request).Dispose();
                continue;
            }

            var sending = http.SendAsync(request);
            Assert.True(sending.IsCompleted, "the request should complete synchronously over the stub");
            sending.GetAwaiter().GetResult().Dispose();
        }
    }

    /// <summary>Opens the circuit of the requests' host with as many 500s as <c>FailureThreshold</c> (5 by default) asks; the stub answers 200 again afterwards.</summary>
    public static void Open(HttpClient http, SynchronousStub stub, int failures = 5)
    {
        stub.StatusCode = HttpStatusCode.InternalServerError;
        for (var i = 0; i < failures; i++)
        {
            http.Send(new HttpRequestMessage(HttpMethod.Get, Target)).Dispose();
        }

        stub.StatusCode = HttpStatusCode.OK;
    }

    /// <summary>A primary handler that answers at once with a new bodiless response of <see cref="StatusCode"/>.</summary>
    internal sealed class SynchronousStub : HttpMessageHandler
    {
        public HttpStatusCode StatusCode { get; set; } = HttpStatusCode.OK;

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) =>
            Task.FromResult(Send(request, cancellationToken));

        protected override HttpResponseMessage Send(HttpRequestMessage request, CancellationToken cancellationToken) =>
            new(StatusCode) { RequestMessage = request };
    }
}
