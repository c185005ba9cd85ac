using System.Net;
using CircuitBreaker.Http.Tests.Integration;
using CircuitBreaker.Http.Tests.TestSupport;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace CircuitBreaker.Http.Tests.Registry;

/// <summary><c>MaxCircuits</c> evicting circuits whose calls are still in flight, against a real Kestrel server.</summary>
public sealed class EvictionTests
{
    [Fact]
    public async Task Eviction_OfACircuitWithACallInFlight_TheCallsOutcomeMovesNoCircuitTheRegistryNoLongerHolds()
    {
        await using var server = await KestrelDownstream.StartAsync();
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        server.Behavior = async context =>
        {
            if (context.Request.Path == "/slow")
            {
                await release.Task.WaitAsync(context.RequestAborted);
                context.Response.StatusCode = StatusCodes.Status500InternalServerError;
                return;
            }

            context.Response.StatusCode = StatusCodes.Status200OK;
        };
        var settings = JsonConfiguration.From("""{ "CircuitBreaker": { "FailureThreshold": 1, "MaxCircuits": 1 } }""");
        using var side = ClientSide.Create(settings, s => s.AddHttpClient("users").AddCircuitBreaker());
        using var client = side.CreateClient();

        var arrived = server.NextRequestArrival();
        var slow = client.GetAsync(new Uri(server.BaseAddress, "slow"));
        await arrived.WaitAsync(TimeSpan.FromSeconds(10));

        // A call to another authority takes the only circuit there is room for: the one whose call is still out.
        using (var other = await client.GetAsync(new Uri(server.AddressFor("localhost"), "other")))
        {
            Assert.Equal(HttpStatusCode.OK, other.StatusCode);
        }

        Assert.DoesNotContain(side.Registry.GetCircuits(), c => c.Authority == server.Authority);

        release.SetResult();
        using (var failed = await slow.WaitAsync(TimeSpan.FromSeconds(10)))
        {
            Assert.Equal(HttpStatusCode.InternalServerError, failed.StatusCode);
        }

        // The evicted circuit is gone: its opening would be reported (a log, circuit.open, StateChanged, a fleet vote) for
        // a circuit nobody can see, reset or withdraw, while calls to the host go through a fresh closed one.
        Assert.Empty(side.Transitions);
        Assert.DoesNotContain(side.Logs.GetSnapshot(), r => r.Id.Name == "CircuitOpened");
        Assert.DoesNotContain(side.Registry.GetCircuits(), c => c.State != CircuitState.Closed);
    }
}
