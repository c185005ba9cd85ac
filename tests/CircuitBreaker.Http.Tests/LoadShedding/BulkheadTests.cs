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
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        server.Behavior = async context =>
        {
            await release.Task.WaitAsync(context.RequestAborted);
            context.Response.StatusCode = StatusCodes.Status200OK;
        };
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
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        server.Behavior = async context =>
        {
            await release.Task.WaitAsync(context.RequestAborted);
            context.Response.StatusCode = StatusCodes.Status200OK;
        };
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
