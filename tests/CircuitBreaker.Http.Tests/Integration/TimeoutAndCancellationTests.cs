using System.Net;
using CircuitBreaker.Http.Tests.TestSupport;

namespace CircuitBreaker.Http.Tests.Integration;

/// <summary>
/// AttemptTimeout is measured with the injected <see cref="TimeProvider"/>: the tests wait until the request
/// is pending on the server, then advance the fake clock, so no test waits for real time to pass.
/// </summary>
public class TimeoutAndCancellationTests
{
    /// <summary>Only a guard against a hang: every awaited step completes in milliseconds when the library works.</summary>
    private static readonly TimeSpan Guard = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task AttemptTimeout_WhenTheServerDoesNotAnswer_ThrowsTaskCanceledWithTimeoutInside_AndCountsAsAFailure()
    {
        await using var server = await KestrelDownstream.StartAsync();
        using var side = ClientSide.ForClient(
            JsonConfiguration.From("""{ "CircuitBreaker": { "FailureThreshold": 1, "AttemptTimeout": "00:00:02" } }"""),
            server);
        using var client = side.CreateClient();
        server.Hang("/slow");

        var arrived = server.NextRequestArrival();
        var call = client.GetAsync("slow");
        await arrived.WaitAsync(Guard);
        Assert.False(call.IsCompleted);
        side.Time.Advance(TimeSpan.FromSeconds(2));

        var thrown = await Assert.ThrowsAsync<TaskCanceledException>(() => call.WaitAsync(Guard));
        var timeout = Assert.IsType<TimeoutException>(thrown.InnerException);
        Assert.Contains("AttemptTimeout", timeout.Message, StringComparison.Ordinal);
        Assert.Equal(CircuitState.Open, side.Circuit("users", server).State);
        await Assert.ThrowsAsync<CircuitOpenException>(() => client.GetAsync("fast"));
        Assert.Equal(1, server.RequestCount);
    }

    [Fact]
    public async Task AttemptTimeout_EndsAHangingProbe_SoTheCircuitReopensInsteadOfStayingHalfOpen()
    {
        await using var server = await KestrelDownstream.StartAsync();
        using var side = ClientSide.ForClient(
            JsonConfiguration.From("""{ "CircuitBreaker": { "FailureThreshold": 1, "BreakDuration": "00:00:30", "AttemptTimeout": "00:00:05" } }"""),
            server);
        using var client = side.CreateClient();
        server.RespondWith(503);
        using (var failed = await client.GetAsync("x"))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, failed.StatusCode);
        }

        side.Time.Advance(TimeSpan.FromSeconds(30));
        server.Hang("/slow");
        var arrived = server.NextRequestArrival();
        var probe = client.GetAsync("slow");
        await arrived.WaitAsync(Guard);

        // While the probe hangs, its single slot is taken: other calls fail fast.
        var rejected = await Assert.ThrowsAsync<CircuitOpenException>(() => client.GetAsync("fast"));
        Assert.Equal(CircuitState.HalfOpen, rejected.State);

        side.Time.Advance(TimeSpan.FromSeconds(5));
        var thrown = await Assert.ThrowsAsync<TaskCanceledException>(() => probe.WaitAsync(Guard));
        Assert.IsType<TimeoutException>(thrown.InnerException);
        var circuit = side.Circuit("users", server);
        Assert.Equal(CircuitState.Open, circuit.State);
        Assert.Equal(side.Time.GetUtcNow() + TimeSpan.FromSeconds(30), circuit.RetryAt);
        Assert.Equal(2, server.RequestCount);
    }

    [Fact]
    public async Task CallerCancellation_OfAPendingRequest_IsNotCounted()
    {
        await using var server = await KestrelDownstream.StartAsync();
        using var side = ClientSide.ForClient(JsonConfiguration.From("""{ "CircuitBreaker": { "FailureThreshold": 1 } }"""), server);
        using var client = side.CreateClient();
        server.Hang();

        using var cts = new CancellationTokenSource();
        var arrived = server.NextRequestArrival();
        var call = client.GetAsync("slow", cts.Token);
        await arrived.WaitAsync(Guard);
        await cts.CancelAsync();

        var thrown = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => call.WaitAsync(Guard));
        Assert.Equal(cts.Token, thrown.CancellationToken);
        Assert.IsNotType<TimeoutException>(thrown.InnerException);
        var circuit = side.Circuit("users", server);
        Assert.Equal(CircuitState.Closed, circuit.State);
        Assert.Equal(0, circuit.ConsecutiveFailures);

        server.RespondWith(200, "ok");
        using var next = await client.GetAsync("slow");
        Assert.Equal(HttpStatusCode.OK, next.StatusCode);
        Assert.Equal(2, server.RequestCount);
    }

    [Fact]
    public async Task CallerCancellation_OfAProbe_IsNotCounted_AndFreesTheProbeSlot()
    {
        await using var server = await KestrelDownstream.StartAsync();
        using var side = ClientSide.ForClient(
            JsonConfiguration.From("""{ "CircuitBreaker": { "FailureThreshold": 1, "BreakDuration": "00:00:30" } }"""),
            server);
        using var client = side.CreateClient();
        server.RespondWith(500);
        using (var failed = await client.GetAsync("x"))
        {
            Assert.Equal(HttpStatusCode.InternalServerError, failed.StatusCode);
        }

        side.Time.Advance(TimeSpan.FromSeconds(30));
        server.Hang();
        using var cts = new CancellationTokenSource();
        var arrived = server.NextRequestArrival();
        var probe = client.GetAsync("x", cts.Token);
        await arrived.WaitAsync(Guard);
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => probe.WaitAsync(Guard));

        Assert.Equal(CircuitState.HalfOpen, side.Circuit("users", server).State);
        server.RespondWith(200, "ok");
        using var next = await client.GetAsync("x");
        Assert.Equal(HttpStatusCode.OK, next.StatusCode);
        Assert.Equal(CircuitState.Closed, side.Circuit("users", server).State);
    }
}
