using System.Net;
using CircuitBreaker.Http.Tests.TestSupport;
using Microsoft.Extensions.DependencyInjection;
using static CircuitBreaker.Http.Tests.Integration.Fallback.FallbackSupport;

namespace CircuitBreaker.Http.Tests.Integration.Fallback;

/// <summary>
/// The order of the chain with every kind configured: custom (here declining), cache, alternate, degraded.
/// </summary>
public sealed class FallbackOrderTests : IAsyncLifetime
{
    private KestrelDownstream _primary = null!;
    private KestrelDownstream _backup = null!;
    private ClientSide _side = null!;
    private HttpClient _client = null!;
    private int _customCalls;
    private int _customSawCache;

    public async Task InitializeAsync()
    {
        _primary = await KestrelDownstream.StartAsync();
        _backup = await KestrelDownstream.StartAsync();
        _primary.Behavior = Ok("primary");
        _backup.Behavior = Ok("backup");
        var json = $$"""
            {
              "CircuitBreaker": {
                "FailureThreshold": 1,
                "BreakDuration": "00:01:00",
                "Fallback": {
                  "Cache": { "Enabled": true },
                  "AlternateBaseAddress": "{{_backup.BaseAddress}}",
                  "Degraded": { "StatusCode": 503, "ContentType": "text/plain", "Body": "degraded" }
                }
              }
            }
            """;
        _side = ClientSide.Create(JsonConfiguration.From(json), services =>
        {
            services.AddHttpClient("users", c => c.BaseAddress = _primary.BaseAddress).AddCircuitBreaker();
            services.Configure<CircuitBreakerOptions>("users", o => o.Fallback.OnOpen = context =>
            {
                Interlocked.Increment(ref _customCalls);
                if (context.CachedResponse is not null)
                {
                    Interlocked.Increment(ref _customSawCache);
                }

                return ValueTask.FromResult<HttpResponseMessage?>(null);
            });
        });
        _client = _side.CreateClient();

        Assert.Equal("primary", await FetchAsync(_client, "users/cached"));
        await OpenAsync(_side, _client, _primary);
    }

    public async Task DisposeAsync()
    {
        _client.Dispose();
        _side.Dispose();
        await _backup.DisposeAsync();
        await _primary.DisposeAsync();
    }

    [Fact]
    public async Task ForACachedUrl_CacheWins_OverAlternateAndDegraded()
    {
        using var response = await _client.GetAsync("users/cached");

        Assert.Equal("cache", Header(response, FallbackHeader));
        Assert.Equal("primary", await response.Content.ReadAsStringAsync());
        Assert.Equal(1, _customCalls);
        Assert.Equal(1, _customSawCache);
        Assert.Equal(0, _backup.RequestCount);
    }

    [Fact]
    public async Task ForAnUncachedUrl_AlternateWins_OverDegraded()
    {
        using var response = await _client.GetAsync("users/other");

        Assert.Equal("alternate", Header(response, FallbackHeader));
        Assert.Equal("backup", await response.Content.ReadAsStringAsync());
        Assert.Equal(1, _customCalls);
        Assert.Equal(0, _customSawCache);
        Assert.Equal(1, _backup.RequestsTo("/users/other"));
    }

    [Fact]
    public async Task WithTheAlternateDown_DegradedWins_WhileACachedUrlStillGetsTheCache()
    {
        await _backup.StopAsync();

        using var uncached = await _client.GetAsync("users/other");
        using var cached = await _client.GetAsync("users/cached");

        Assert.Equal(HttpStatusCode.ServiceUnavailable, uncached.StatusCode);
        Assert.Equal("degraded", Header(uncached, FallbackHeader));
        Assert.Equal("degraded", await uncached.Content.ReadAsStringAsync());
        Assert.Equal("cache", Header(cached, FallbackHeader));
        Assert.Equal("primary", await cached.Content.ReadAsStringAsync());
        Assert.Equal(2, _customCalls);
    }
}
