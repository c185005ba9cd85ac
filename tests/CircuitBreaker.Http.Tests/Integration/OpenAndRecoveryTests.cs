using System.Net;
using CircuitBreaker.Http.Tests.TestSupport;

namespace CircuitBreaker.Http.Tests.Integration;

/// <summary>Closed → open → half-open → closed (or open again) against a real Kestrel server.</summary>
public class OpenAndRecoveryTests
{
    private const string Config = """
        {
          "CircuitBreaker": {
            "FailureThreshold": 3,
            "BreakDuration": "00:00:30",
            "BreakDurationMultiplier": 2
          }
        }
        """;

    [Fact]
    public async Task Circuit_AfterFailureThresholdConsecutive5xx_OpensAndStopsCallingTheServer()
    {
        await using var server = await KestrelDownstream.StartAsync();
        using var side = ClientSide.ForClient(JsonConfiguration.From(Config), server);
        using var client = side.CreateClient();
        server.RespondWith(500, "boom");

        for (var i = 1; i <= 3; i++)
        {
            using var response = await client.GetAsync("users/1");
            Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
            Assert.Equal(i, server.RequestCount);
            Assert.Equal(i < 3 ? CircuitState.Closed : CircuitState.Open, side.Circuit("users", server).State);
        }

        // Caught as the HttpRequestException existing code already handles.
        var thrown = await Assert.ThrowsAnyAsync<HttpRequestException>(() => client.GetAsync("users/1"));

        var open = Assert.IsType<CircuitOpenException>(thrown);
        Assert.Equal(new CircuitKey("users", server.Authority), open.CircuitKey);
        Assert.Equal(CircuitState.Open, open.State);
        Assert.Equal(TimeSpan.FromSeconds(30), open.RetryAfter);
        Assert.Contains(server.Authority, open.Message, StringComparison.Ordinal);
        Assert.Equal(3, server.RequestCount);
        Assert.Equal(3, server.RequestsTo("/users/1"));
    }

    [Fact]
    public async Task Circuit_WhenBreakElapsed_IsReportedHalfOpenBeforeAnyCall_AndASuccessfulProbeClosesIt()
    {
        await using var server = await KestrelDownstream.StartAsync();
        using var side = ClientSide.ForClient(JsonConfiguration.From(Config), server);
        using var client = side.CreateClient();
        await OpenAsync(client, server);

        side.Time.Advance(TimeSpan.FromSeconds(29));
        Assert.Equal(CircuitState.Open, side.Circuit("users", server).State);

        side.Time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(CircuitState.HalfOpen, side.Circuit("users", server).State);
        Assert.Equal(3, server.RequestCount);

        server.RespondWith(200, "back");
        using var probe = await client.GetAsync("users/1");

        Assert.Equal(HttpStatusCode.OK, probe.StatusCode);
        Assert.Equal("back", await probe.Content.ReadAsStringAsync());
        Assert.Equal(4, server.RequestCount);
        var circuit = side.Circuit("users", server);
        Assert.Equal(CircuitState.Closed, circuit.State);
        Assert.Equal(0, circuit.ConsecutiveFailures);
        Assert.Equal(
            [
                $"users {server.Authority} Closed->Open",
                $"users {server.Authority} Open->HalfOpen",
                $"users {server.Authority} HalfOpen->Closed",
            ],
            side.Transitions);

        using var next = await client.GetAsync("users/2");
        Assert.Equal(HttpStatusCode.OK, next.StatusCode);
    }

    [Fact]
    public async Task Circuit_WhenTheProbeFails_ReopensForTheBreakTimesTheMultiplier()
    {
        await using var server = await KestrelDownstream.StartAsync();
        using var side = ClientSide.ForClient(JsonConfiguration.From(Config), server);
        using var client = side.CreateClient();
        await OpenAsync(client, server);
        side.Time.Advance(TimeSpan.FromSeconds(30));

        // The probe reaches the server, fails, and its response still goes back to the caller.
        using var probe = await client.GetAsync("users/1");
        Assert.Equal(HttpStatusCode.InternalServerError, probe.StatusCode);
        Assert.Equal(4, server.RequestCount);

        var circuit = side.Circuit("users", server);
        Assert.Equal(CircuitState.Open, circuit.State);
        Assert.Equal(side.Time.GetUtcNow() + TimeSpan.FromSeconds(60), circuit.RetryAt);
        var open = await Assert.ThrowsAsync<CircuitOpenException>(() => client.GetAsync("users/1"));
        Assert.Equal(TimeSpan.FromSeconds(60), open.RetryAfter);
        Assert.Equal(4, server.RequestCount);

        side.Time.Advance(TimeSpan.FromSeconds(59));
        Assert.Equal(CircuitState.Open, side.Circuit("users", server).State);
        side.Time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(CircuitState.HalfOpen, side.Circuit("users", server).State);
    }

    [Fact]
    public async Task SynchronousSend_IsGuardedByTheSameCircuit()
    {
        await using var server = await KestrelDownstream.StartAsync();
        using var side = ClientSide.ForClient(JsonConfiguration.From(Config), server);
        using var client = side.CreateClient();
        server.RespondWith(500);

        for (var i = 0; i < 3; i++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "users/1");
            using var response = client.Send(request);
            Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
        }

        using var rejected = new HttpRequestMessage(HttpMethod.Get, "users/1");
        var open = Assert.Throws<CircuitOpenException>(() => client.Send(rejected));
        Assert.Equal(CircuitState.Open, open.State);
        Assert.Equal(3, server.RequestCount);
    }

    [Fact]
    public async Task Isolate_KeepsTheCircuitOpenWhateverTheTime_UntilReset()
    {
        await using var server = await KestrelDownstream.StartAsync();
        using var side = ClientSide.ForClient(JsonConfiguration.From(Config), server);
        using var client = side.CreateClient();
        var key = new CircuitKey("users", server.Authority);

        side.Registry.Isolate(key);
        side.Time.Advance(TimeSpan.FromHours(1));
        var isolated = await Assert.ThrowsAsync<CircuitOpenException>(() => client.GetAsync("users/1"));

        Assert.Equal(CircuitState.Isolated, isolated.State);
        Assert.Null(isolated.RetryAfter);
        Assert.Equal(0, server.RequestCount);
        Assert.True(side.Registry.Reset(key));
        using var response = await client.GetAsync("users/1");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(1, server.RequestCount);
    }

    private static async Task OpenAsync(HttpClient client, KestrelDownstream server)
    {
        server.RespondWith(500, "boom");
        for (var i = 0; i < 3; i++)
        {
            using var response = await client.GetAsync("users/1");
            Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
        }

        await Assert.ThrowsAsync<CircuitOpenException>(() => client.GetAsync("users/1"));
    }
}
