using System.Net;
using CircuitBreaker.Http.Tests.TestSupport;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace CircuitBreaker.Http.Tests.Integration;

/// <summary>What the real network and server produce, and which of it counts as a failure of the host.</summary>
public class FailureClassificationTests
{
    [Fact]
    public async Task RefusedConnections_CountAsFailures_AndOpenTheCircuit()
    {
        await using var server = await KestrelDownstream.StartAsync();
        using var side = ClientSide.ForClient(JsonConfiguration.From("""{ "CircuitBreaker": { "FailureThreshold": 2 } }"""), server);
        using var client = side.CreateClient();
        using (var ok = await client.GetAsync("x"))
        {
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        }

        await server.StopAsync();

        // The refusals themselves surface as they would without a breaker: a plain HttpRequestException.
        for (var i = 1; i <= 2; i++)
        {
            var refused = await Assert.ThrowsAsync<HttpRequestException>(() => client.GetAsync("x"));
            Assert.Equal(HttpRequestError.ConnectionError, refused.HttpRequestError);
            Assert.Equal(i, side.Circuit("users", server).ConsecutiveFailures);
        }

        Assert.Equal(CircuitState.Open, side.Circuit("users", server).State);
        var open = await Assert.ThrowsAsync<CircuitOpenException>(() => client.GetAsync("x"));
        Assert.Equal(new CircuitKey("users", server.Authority), open.CircuitKey);
    }

    [Fact]
    public async Task NotFound_IsNotCounted()
    {
        await using var server = await KestrelDownstream.StartAsync();
        using var side = ClientSide.ForClient(JsonConfiguration.From("""{ "CircuitBreaker": { "FailureThreshold": 1 } }"""), server);
        using var client = side.CreateClient();
        server.RespondWith(404, "no such user");

        for (var i = 0; i < 3; i++)
        {
            using var response = await client.GetAsync("users/42");
            Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        }

        var circuit = side.Circuit("users", server);
        Assert.Equal(CircuitState.Closed, circuit.State);
        Assert.Equal(0, circuit.ConsecutiveFailures);
        Assert.Equal(3, server.RequestCount);
    }

    [Fact]
    public async Task CountedServerError_IsReturnedToTheCallerUnchanged_WhileClosed()
    {
        await using var server = await KestrelDownstream.StartAsync();
        using var side = ClientSide.ForClient(JsonConfiguration.From("""{ "CircuitBreaker": { "FailureThreshold": 2 } }"""), server);
        using var client = side.CreateClient();
        server.Behavior = async context =>
        {
            context.Response.StatusCode = 500;
            context.Response.Headers["X-Downstream"] = "kestrel";
            context.Response.ContentType = "application/problem+json";
            await context.Response.WriteAsync("""{"title":"database down"}""", context.RequestAborted);
        };

        using var response = await client.GetAsync("users/1");

        Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
        Assert.Equal("kestrel", Assert.Single(response.Headers.GetValues("X-Downstream")));
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal("""{"title":"database down"}""", await response.Content.ReadAsStringAsync());
        var circuit = side.Circuit("users", server);
        Assert.Equal(CircuitState.Closed, circuit.State);
        Assert.Equal(1, circuit.ConsecutiveFailures);
    }

    [Fact]
    public async Task FailureStatusCodes_FromJson_Count429_ButNotOther4xx()
    {
        await using var server = await KestrelDownstream.StartAsync();
        using var side = ClientSide.ForClient(
            JsonConfiguration.From("""{ "CircuitBreaker": { "FailureThreshold": 1, "FailureStatusCodes": "5xx,429" } }"""),
            server);
        using var client = side.CreateClient();

        server.RespondWith(409);
        using (var conflict = await client.GetAsync("x"))
        {
            Assert.Equal(HttpStatusCode.Conflict, conflict.StatusCode);
        }

        Assert.Equal(CircuitState.Closed, side.Circuit("users", server).State);
        server.RespondWith(429);
        using (var throttled = await client.GetAsync("x"))
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, throttled.StatusCode);
        }

        Assert.Equal(CircuitState.Open, side.Circuit("users", server).State);
    }

    [Fact]
    public async Task RequestContentThatCannotBeSentAgain_IsNotCountedAgainstTheHost_WhichNeverReceivedTheRetry()
    {
        await using var server = await KestrelDownstream.StartAsync();
        using var side = ClientSide.Create(
            JsonConfiguration.From("""{ "CircuitBreaker": { "FailureThreshold": 2 } }"""),
            s => s.AddHttpClient("users", c => c.BaseAddress = server.BaseAddress).AddHttpMessageHandler(() => new ResendOn5xxHandler()).AddCircuitBreaker());
        using var client = side.CreateClient();
        server.RespondWith(503, "busy");

        // The retry above the breaker re-sends the upload, whose body was read by the first attempt: SocketsHttpHandler
        // fails it before a byte goes out, with an HttpRequestException around the content's InvalidOperationException.
        using var upload = new StreamContent(new ForwardOnlyStream("payload"u8.ToArray()));
        var thrown = await Assert.ThrowsAsync<HttpRequestException>(() => client.PostAsync("upload", upload));

        Assert.IsType<InvalidOperationException>(thrown.InnerException);
        Assert.Equal(1, server.RequestCount);
        var circuit = side.Circuit("users", server);
        Assert.Equal(1, circuit.ConsecutiveFailures); // the 503, and nothing for the retry the host never saw
        Assert.Equal(CircuitState.Closed, circuit.State);
    }
}
