using System.Net;
using CircuitBreaker.Http.Tests.TestSupport;
using Microsoft.Extensions.DependencyInjection;

namespace CircuitBreaker.Http.Tests.Integration;

/// <summary>One circuit per (client, authority): a failing host never opens the circuit of another host or another client.</summary>
public class IsolationTests
{
    private const string Config = """{ "CircuitBreaker": { "FailureThreshold": 1 } }""";

    [Fact]
    public async Task FailingHost_OpensOnlyItsOwnCircuit_AndTheOtherHostKeepsWorking()
    {
        await using var failing = await KestrelDownstream.StartAsync();
        await using var healthy = await KestrelDownstream.StartAsync();
        using var side = ClientSide.ForClient(JsonConfiguration.From(Config), failing);
        using var client = side.CreateClient();
        failing.RespondWith(500);

        using (var failed = await client.GetAsync("orders"))
        {
            Assert.Equal(HttpStatusCode.InternalServerError, failed.StatusCode);
        }

        await Assert.ThrowsAsync<CircuitOpenException>(() => client.GetAsync("orders"));
        using var other = await client.GetAsync(new Uri(healthy.BaseAddress, "orders"));

        Assert.Equal(HttpStatusCode.OK, other.StatusCode);
        Assert.Equal(1, failing.RequestCount);
        Assert.Equal(1, healthy.RequestCount);
        Assert.Equal(CircuitState.Open, side.Circuit("users", failing).State);
        Assert.Equal(CircuitState.Closed, side.Circuit("users", healthy).State);
    }

    [Fact]
    public async Task SameServer_UnderTwoHostNames_HasTwoCircuits()
    {
        await using var server = await KestrelDownstream.StartAsync();
        using var side = ClientSide.ForClient(JsonConfiguration.From(Config), server);
        using var client = side.CreateClient();
        var viaLocalhost = server.AddressFor("localhost");
        var localhostAuthority = $"http://localhost:{server.Port}";

        server.RespondWith(500);
        using (var failed = await client.GetAsync(new Uri(viaLocalhost, "orders")))
        {
            Assert.Equal(HttpStatusCode.InternalServerError, failed.StatusCode);
        }

        var open = await Assert.ThrowsAsync<CircuitOpenException>(() => client.GetAsync(new Uri(viaLocalhost, "orders")));
        Assert.Equal(new CircuitKey("users", localhostAuthority), open.CircuitKey);

        server.RespondWith(200, "ok");
        using var other = await client.GetAsync("orders");
        Assert.Equal(HttpStatusCode.OK, other.StatusCode);
        Assert.Equal(2, server.RequestCount);
        Assert.Equal(CircuitState.Open, side.Circuit("users", localhostAuthority).State);
        Assert.Equal(CircuitState.Closed, side.Circuit("users", server).State);
    }

    [Fact]
    public async Task TwoNamedClients_CallingTheSameHost_HaveSeparateCircuits()
    {
        await using var server = await KestrelDownstream.StartAsync();
        using var side = ClientSide.Create(JsonConfiguration.From(Config), services =>
        {
            services.AddHttpClient("users", c => c.BaseAddress = server.BaseAddress).AddCircuitBreaker();
            services.AddHttpClient("orders", c => c.BaseAddress = server.BaseAddress).AddCircuitBreaker();
        });
        using var users = side.CreateClient("users");
        using var orders = side.CreateClient("orders");

        server.RespondWith(500);
        using (var failed = await users.GetAsync("x"))
        {
            Assert.Equal(HttpStatusCode.InternalServerError, failed.StatusCode);
        }

        await Assert.ThrowsAsync<CircuitOpenException>(() => users.GetAsync("x"));
        server.RespondWith(200, "ok");
        using var response = await orders.GetAsync("x");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(2, server.RequestCount);
        Assert.Equal(CircuitState.Open, side.Circuit("users", server).State);
        Assert.Equal(CircuitState.Closed, side.Circuit("orders", server).State);
    }

    [Fact]
    public async Task AddCircuitBreaker_ForEveryClient_PutsABreakerOnTheDefaultAndNamedClients_EachWithItsOwnCircuits()
    {
        await using var server = await KestrelDownstream.StartAsync();
        using var side = ClientSide.Create(
            JsonConfiguration.From("""{ "CircuitBreaker": { "FailureThreshold": 2 } }"""),
            services =>
            {
                services.AddHttpClient().AddCircuitBreaker();
                services.AddHttpClient("users", c => c.BaseAddress = server.BaseAddress);
                services.AddHttpClient("orders", c => c.BaseAddress = server.BaseAddress);
            });
        using var defaultClient = side.CreateClient(string.Empty);
        using var users = side.CreateClient("users");
        using var orders = side.CreateClient("orders");
        server.RespondWith(500);

        // The default client: two failures open its circuit.
        for (var i = 0; i < 2; i++)
        {
            using var failed = await defaultClient.GetAsync(new Uri(server.BaseAddress, "x"));
            Assert.Equal(HttpStatusCode.InternalServerError, failed.StatusCode);
        }

        var defaultOpen = await Assert.ThrowsAsync<CircuitOpenException>(() => defaultClient.GetAsync(new Uri(server.BaseAddress, "x")));
        Assert.Equal(new CircuitKey(string.Empty, server.Authority), defaultOpen.CircuitKey);

        // "users" still reaches the same host: its own circuit has seen one failure only.
        using (var failed = await users.GetAsync("x"))
        {
            Assert.Equal(HttpStatusCode.InternalServerError, failed.StatusCode);
        }

        Assert.Equal(3, server.RequestCount);
        Assert.Equal(1, side.Circuit("users", server).ConsecutiveFailures);

        // ...and has a breaker of its own, which opens on its second failure.
        using (var failed = await users.GetAsync("x"))
        {
            Assert.Equal(HttpStatusCode.InternalServerError, failed.StatusCode);
        }

        var usersOpen = await Assert.ThrowsAsync<CircuitOpenException>(() => users.GetAsync("x"));
        Assert.Equal(new CircuitKey("users", server.Authority), usersOpen.CircuitKey);

        server.RespondWith(200, "ok");
        using var fine = await orders.GetAsync("x");
        Assert.Equal(HttpStatusCode.OK, fine.StatusCode);
        Assert.Equal(5, server.RequestCount);
        Assert.Equal(
            [("", CircuitState.Open), ("orders", CircuitState.Closed), ("users", CircuitState.Open)],
            side.Registry.GetCircuits().Select(c => (c.ClientName, c.State)).OrderBy(c => c.ClientName, StringComparer.Ordinal));
    }
}
