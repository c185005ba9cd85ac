using System.Net;
using CircuitBreaker.Http.Tests.TestSupport;
using Microsoft.Extensions.DependencyInjection;
using static CircuitBreaker.Http.Tests.Integration.Fallback.FallbackSupport;

namespace CircuitBreaker.Http.Tests.Integration.Fallback;

/// <summary>
/// Edge cases of the fallback cache that once lost the last good response: HEAD responses, a full cache, and
/// a custom fallback that disposes the cached copy it was offered.
/// </summary>
public class CacheEdgeCaseTests
{
    private const string SmallFullCache = """
        {
          "CircuitBreaker": {
            "FailureThreshold": 1,
            "Fallback": { "Cache": { "Enabled": true, "MaxEntries": 10, "MaxTotalBytes": 10000 } }
          }
        }
        """;

    [Fact]
    public async Task HeadResponse_WhileOpen_IsReplayedFromTheCache()
    {
        await using var server = await KestrelDownstream.StartAsync();
        using var side = ClientSide.ForClient(
            JsonConfiguration.From("""{ "CircuitBreaker": { "FailureThreshold": 1, "Fallback": { "Cache": { "Enabled": true } } } }"""),
            server);
        using var client = side.CreateClient();
        using (var head = new HttpRequestMessage(HttpMethod.Head, "users/1"))
        using (var response = await client.SendAsync(head))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        await OpenAsync(side, client, server);

        using var again = new HttpRequestMessage(HttpMethod.Head, "users/1");
        using var replayed = await client.SendAsync(again);
        Assert.Equal("cache", Header(replayed, FallbackHeader));
    }

    [Fact]
    public async Task RefreshedResponse_WhenTheCacheIsFull_LeavesTheUrlCached()
    {
        await using var server = await KestrelDownstream.StartAsync();
        using var side = ClientSide.ForClient(JsonConfiguration.From(SmallFullCache), server);
        using var client = side.CreateClient();
        var grown = false;
        server.Behavior = OkFrom(r => grown && r.Path == "/u/0" ? new string('n', 1500) : $"old {r.Path}");
        for (var i = 0; i < 10; i++)
        {
            await FetchAsync(client, $"u/{i}");
        }

        Assert.Equal(10000, CacheOf(side).Charged); // full: 10 entries charged the minimum of 1000 bytes each
        grown = true;
        Assert.Equal(1500, (await FetchAsync(client, "u/0")).Length);
        await OpenAsync(side, client, server);

        using var replayed = await client.GetAsync("u/0");
        Assert.Equal(1500, (await replayed.Content.ReadAsStringAsync()).Length);
    }

    [Fact]
    public async Task NewResponse_WhenTheCacheIsFull_IsStored_AndTheLeastRecentlyUsedEntryMakesRoom()
    {
        await using var server = await KestrelDownstream.StartAsync();
        using var side = ClientSide.ForClient(JsonConfiguration.From(SmallFullCache), server);
        using var client = side.CreateClient();
        for (var i = 0; i <= 10; i++)
        {
            await FetchAsync(client, $"u/{i}");
        }

        await OpenAsync(side, client, server);

        using var newest = await client.GetAsync("u/10");
        Assert.Equal("cache", Header(newest, FallbackHeader));
        Assert.InRange(CacheOf(side).Count, 1, 10);
    }

    [Fact]
    public async Task Custom_ThatDisposesTheCachedResponseAndDeclines_StillLetsTheCacheServeAReadableResponse()
    {
        await using var server = await KestrelDownstream.StartAsync();
        using var side = ClientSide.Create(
            JsonConfiguration.From("""{ "CircuitBreaker": { "FailureThreshold": 1, "Fallback": { "Cache": { "Enabled": true } } } }"""),
            services =>
            {
                services.AddHttpClient("users", c => c.BaseAddress = server.BaseAddress).AddCircuitBreaker();
                services.Configure<CircuitBreakerOptions>("users", o => o.Fallback.OnOpen = async context =>
                {
                    // Inspects the cached copy it was given, the natural way, and declines.
                    using var cached = context.CachedResponse;
                    _ = cached is null ? null : await cached.Content.ReadAsStringAsync(context.CancellationToken);
                    return null;
                });
            });
        using var client = side.CreateClient();
        Assert.Equal("ok", await FetchAsync(client, "users/1"));
        await OpenAsync(side, client, server);

        using var response = await client.GetAsync("users/1");
        Assert.Equal("cache", Header(response, FallbackHeader));
        Assert.Equal("ok", await response.Content.ReadAsStringAsync());
    }
}
