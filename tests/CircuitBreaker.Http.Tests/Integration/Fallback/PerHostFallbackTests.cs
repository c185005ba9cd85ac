using CircuitBreaker.Http.Tests.TestSupport;
using static CircuitBreaker.Http.Tests.Integration.Fallback.FallbackSupport;

namespace CircuitBreaker.Http.Tests.Integration.Fallback;

/// <summary>
/// <c>CircuitBreaker:Hosts:{host}:Fallback</c> changes the fallback of one host only. One server is reached as
/// 127.0.0.1 and as localhost: two hosts, two circuits.
/// </summary>
public class PerHostFallbackTests
{
    [Fact]
    public async Task HostDegradedBody_AppliesToThatHostOnly_TheOtherKeepsTheClientsDegradedResponse()
    {
        await using var server = await KestrelDownstream.StartAsync();
        using var side = ClientSide.ForClient(
            JsonConfiguration.From("""
                {
                  "CircuitBreaker": {
                    "FailureThreshold": 1,
                    "Fallback": {
                      "Degraded": { "StatusCode": 503, "ContentType": "application/json", "Body": "{\"from\":\"client\"}", "Headers": { "X-Degraded": "client" } }
                    },
                    "Hosts": {
                      "localhost": { "Fallback": { "Degraded": { "Body": "{\"from\":\"localhost\"}", "Headers": { "X-Host": "localhost" } } } }
                    }
                  }
                }
                """),
            server);
        using var client = side.CreateClient();
        var viaLocalhost = server.AddressFor("localhost");
        await OpenAsync(side, client, server);
        await OpenAsync(side, client, server, viaLocalhost);

        using var fromIp = await client.GetAsync("users/1");
        using var fromLocalhost = await client.GetAsync(new Uri(viaLocalhost, "users/1"));

        Assert.Equal("""{"from":"client"}""", await fromIp.Content.ReadAsStringAsync());
        Assert.Null(Header(fromIp, "X-Host"));
        Assert.Equal("""{"from":"localhost"}""", await fromLocalhost.Content.ReadAsStringAsync());
        Assert.Equal("application/json", fromLocalhost.Content.Headers.ContentType?.MediaType); // kept from the client
        Assert.Equal(503, (int)fromLocalhost.StatusCode);
        Assert.Equal("client", Header(fromLocalhost, "X-Degraded")); // headers are added to the client's
        Assert.Equal("localhost", Header(fromLocalhost, "X-Host"));
        Assert.Equal("degraded", Header(fromLocalhost, FallbackHeader));
    }

    [Fact]
    public async Task HostDegradedResponse_WhenTheClientHasNone_AppliesToThatHostOnly()
    {
        await using var server = await KestrelDownstream.StartAsync();
        using var side = ClientSide.ForClient(
            JsonConfiguration.From("""
                {
                  "CircuitBreaker": {
                    "FailureThreshold": 1,
                    "Hosts": {
                      "LOCALHOST": { "Fallback": { "Degraded": { "StatusCode": 200, "ContentType": "text/plain", "Body": "local fallback" } } }
                    }
                  }
                }
                """),
            server);
        using var client = side.CreateClient();
        var viaLocalhost = server.AddressFor("localhost");
        await OpenAsync(side, client, server);
        await OpenAsync(side, client, server, viaLocalhost);

        using var fromLocalhost = await client.GetAsync(new Uri(viaLocalhost, "users/1"));
        await Assert.ThrowsAsync<CircuitOpenException>(() => client.GetAsync("users/1"));

        Assert.Equal("local fallback", await fromLocalhost.Content.ReadAsStringAsync());
        Assert.Equal("degraded", Header(fromLocalhost, FallbackHeader));
    }

    [Fact]
    public async Task HostCacheEnabledFalse_TurnsCachingOffForThatHostOnly()
    {
        await using var server = await KestrelDownstream.StartAsync();
        using var side = ClientSide.ForClient(
            JsonConfiguration.From("""
                {
                  "CircuitBreaker": {
                    "FailureThreshold": 1,
                    "Fallback": { "Cache": { "Enabled": true } },
                    "Hosts": { "localhost": { "Fallback": { "Cache": { "Enabled": false } } } }
                  }
                }
                """),
            server);
        using var client = side.CreateClient();
        var viaLocalhost = server.AddressFor("localhost");
        Assert.Equal("ok", await FetchAsync(client, "users/1"));
        Assert.Equal("ok", await FetchAsync(client, new Uri(viaLocalhost, "users/1").ToString()));
        Assert.Equal(1, CacheOf(side).Count);
        await OpenAsync(side, client, server);
        await OpenAsync(side, client, server, viaLocalhost);

        using var fromIp = await client.GetAsync("users/1");
        Assert.Equal("cache", Header(fromIp, FallbackHeader));
        await Assert.ThrowsAsync<CircuitOpenException>(() => client.GetAsync(new Uri(viaLocalhost, "users/1")));
    }

    [Fact]
    public async Task HostCacheEnabledTrue_WhenTheClientDoesNotCache_TurnsCachingOnForThatHostOnly()
    {
        await using var server = await KestrelDownstream.StartAsync();
        using var side = ClientSide.ForClient(
            JsonConfiguration.From("""
                {
                  "CircuitBreaker": {
                    "FailureThreshold": 1,
                    "Hosts": { "localhost": { "Fallback": { "Cache": { "Enabled": true } } } }
                  }
                }
                """),
            server);
        using var client = side.CreateClient();
        var viaLocalhost = server.AddressFor("localhost");
        Assert.Equal("ok", await FetchAsync(client, "users/1"));
        Assert.Equal("ok", await FetchAsync(client, new Uri(viaLocalhost, "users/1").ToString()));
        Assert.Equal(1, CacheOf(side).Count);
        await OpenAsync(side, client, server);
        await OpenAsync(side, client, server, viaLocalhost);

        using var fromLocalhost = await client.GetAsync(new Uri(viaLocalhost, "users/1"));
        Assert.Equal("cache", Header(fromLocalhost, FallbackHeader));
        await Assert.ThrowsAsync<CircuitOpenException>(() => client.GetAsync("users/1"));
    }
}
