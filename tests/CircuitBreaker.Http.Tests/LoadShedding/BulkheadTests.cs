using System.Net;
using CircuitBreaker.Http.Tests.Integration;
using CircuitBreaker.Http.Tests.TestSupport;
using Microsoft.AspNetCore.Http;

namespace CircuitBreaker.Http.Tests.LoadShedding;

/// <summary>The bulkhead against a real Kestrel server whose answers the test holds back.</summary>
public sealed class BulkheadTests
{
    [Fact]
    public async Task MaxConcurrentRequests_ShedsTheCallBeyondTheLimitAtOnce()
    {
        await using var server = await KestrelDownstream.StartAsync();
        var release = HoldAnswers(server);
        using var side = ClientSide.ForClient(JsonConfiguration.From("""{ "CircuitBreaker": { "MaxConcurrentRequests": 2 } }"""), server);
        using var client = side.CreateClient();

        var first = client.GetAsync("a");
        var second = client.GetAsync("b");
        await WaitForAsync(() => server.RequestCount == 2);
        var shed = await Assert.ThrowsAsync<LoadSheddingException>(() => client.GetAsync("c"));
        release.SetResult();
        (await first).Dispose();
        (await second).Dispose();
        using var afterwards = await client.GetAsync("d");

        Assert.Equal(LoadSheddingReason.Concurrency, shed.Reason);
        Assert.Equal(HttpStatusCode.OK, afterwards.StatusCode);
        Assert.Equal(3, server.RequestCount);
        Assert.Equal(CircuitState.Closed, side.Circuit("users", server).State);
    }

    [Fact]
    public async Task MaxQueuedRequests_QueuesUpToTheLimit_ThenSheds()
    {
        await using var server = await KestrelDownstream.StartAsync();
        var release = HoldAnswers(server);
        using var side = ClientSide.ForClient(JsonConfiguration.From("""{ "CircuitBreaker": { "MaxConcurrentRequests": 1, "MaxQueuedRequests": 1 } }"""), server);
        using var client = side.CreateClient();

        var running = client.GetAsync("a");
        await WaitForAsync(() => server.RequestCount == 1);
        var queued = client.GetAsync("b");
        var shed = await Assert.ThrowsAsync<LoadSheddingException>(() => client.GetAsync("c"));
        Assert.False(queued.IsCompleted);
        Assert.Equal(1, server.RequestCount); // the queued call has not been sent

        release.SetResult();
        (await running).Dispose();
        (await queued).Dispose();

        Assert.Equal(LoadSheddingReason.Concurrency, shed.Reason);
        Assert.Equal(2, server.RequestCount);
    }

    [Fact]
    public async Task ObserveOnly_CallBeyondTheLimit_IsSentAtOnce_NotHeldInTheQueue()
    {
        // Observe-only promises that the calls a limit would turn away are sent all the same: a call that an enforcing
        // bulkhead would queue must not wait behind the calls in flight either.
        await using var server = await KestrelDownstream.StartAsync();
        var release = HoldAnswers(server);
        using var side = ClientSide.ForClient(
            JsonConfiguration.From("""{ "CircuitBreaker": { "Enforce": false, "MaxConcurrentRequests": 1, "MaxQueuedRequests": 1 } }"""),
            server);
        using var client = side.CreateClient();

        var running = client.GetAsync("a");
        await WaitForAsync(() => server.RequestCount == 1);
        var beyond = client.GetAsync("b");
        await WaitForAsync(() => server.RequestCount == 2);

        release.SetResult();
        (await running).Dispose();
        (await beyond).Dispose();
        Assert.Equal(2, server.RequestCount);
    }

    [Fact]
    public async Task Reload_ThatLeavesTheLimitsAlone_KeepsTheBulkhead_AndTheCallsItHolds()
    {
        // Any reload of the configuration re-applies every client's options; the bulkhead must not start empty
        // while its calls still run, or the limit is exceeded.
        await using var server = await KestrelDownstream.StartAsync();
        var release = HoldAnswers(server);
        using var settings = new AppSettingsFile("""{ "CircuitBreaker": { "MaxConcurrentRequests": 1, "FailureThreshold": 5 } }""");
        using var side = ClientSide.ForClient(settings.Root, server);
        using var client = side.CreateClient();

        var running = client.GetAsync("a");
        await WaitForAsync(() => server.RequestCount == 1);
        settings.Rewrite("""{ "CircuitBreaker": { "MaxConcurrentRequests": 1, "FailureThreshold": 6 } }""");
        var shed = await Assert.ThrowsAsync<LoadSheddingException>(() => client.GetAsync("b").WaitAsync(TimeSpan.FromSeconds(10)));
        release.SetResult();
        (await running).Dispose();

        Assert.Equal(LoadSheddingReason.Concurrency, shed.Reason);
        Assert.Equal(1, server.RequestCount);
    }

    [Fact]
    public async Task Reload_ThatChangesOnlyTheThrottle_KeepsTheBulkhead_AndTheCallsItHolds()
    {
        // The throttle and the bulkhead are separate limits: a new rate must not hand out a fresh bulkhead that
        // forgets the calls still running.
        await using var server = await KestrelDownstream.StartAsync();
        var release = HoldAnswers(server);
        using var settings = new AppSettingsFile("""{ "CircuitBreaker": { "MaxConcurrentRequests": 1, "Throttle": { "PermitsPerSecond": 1000 } } }""");
        using var side = ClientSide.ForClient(settings.Root, server);
        using var client = side.CreateClient();

        var running = client.GetAsync("a");
        await WaitForAsync(() => server.RequestCount == 1);
        settings.Rewrite("""{ "CircuitBreaker": { "MaxConcurrentRequests": 1, "Throttle": { "PermitsPerSecond": 2000 } } }""");
        var shed = await Assert.ThrowsAsync<LoadSheddingException>(() => client.GetAsync("b").WaitAsync(TimeSpan.FromSeconds(10)));
        release.SetResult();
        (await running).Dispose();

        Assert.Equal(LoadSheddingReason.Concurrency, shed.Reason);
        Assert.Equal(1, server.RequestCount);
    }

    [Fact]
    public async Task Reload_ThatChangesTheLimit_LetsTheQueuedCallFinishUnderTheOldOne()
    {
        await using var server = await KestrelDownstream.StartAsync();
        var release = HoldAnswers(server);
        using var settings = new AppSettingsFile("""{ "CircuitBreaker": { "MaxConcurrentRequests": 1, "MaxQueuedRequests": 1 } }""");
        using var side = ClientSide.ForClient(settings.Root, server);
        using var client = side.CreateClient();

        var running = client.GetAsync("a");
        await WaitForAsync(() => server.RequestCount == 1);
        var queued = client.GetAsync("b");
        settings.Rewrite("""{ "CircuitBreaker": { "MaxConcurrentRequests": 2, "MaxQueuedRequests": 1 } }""");
        Assert.False(queued.IsCompleted); // still waiting for the running call's permit, not failed by the reload
        release.SetResult();
        (await running).Dispose();
        using var afterwards = await queued;

        Assert.Equal(HttpStatusCode.OK, afterwards.StatusCode);
        Assert.Equal(2, server.RequestCount);
    }

    /// <summary>Makes the server hold every request until the returned source is set, then answer 200.</summary>
    private static TaskCompletionSource HoldAnswers(KestrelDownstream server)
    {
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        server.Behavior = async context =>
        {
            await release.Task.WaitAsync(context.RequestAborted);
            context.Response.StatusCode = StatusCodes.Status200OK;
        };
        return release;
    }

    /// <summary>Waits, bounded, for the server to see requests that are on their way.</summary>
    private static async Task WaitForAsync(Func<bool> condition)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        while (!condition())
        {
            await Task.Delay(10, timeout.Token);
        }
    }
}
