using System.Text;
using BenchmarkDotNet.Attributes;
using Microsoft.Extensions.DependencyInjection;
using Polly.CircuitBreaker;

namespace CircuitBreaker.Http.Benchmarks;

/// <summary>
/// The open path, paid by every request while a host is down: the rejection, with an exception
/// (<see cref="CircuitOpenException"/> here, <see cref="BrokenCircuitException"/> for Polly, both caught), or
/// answered by a fallback (degraded response, or the cached last good response). Every circuit stays open for
/// the whole run (a one-hour break). The baseline is Polly's rejection, as issue 6 defines the targets.
/// <see cref="PollyOpenFallback"/> is for reference: Polly's circuit answered by Polly's own fallback strategy with the
/// same degraded response, the like-for-like comparison for <see cref="CircuitBreakerOpenDegraded"/> (no exception on
/// either side), since most of what the degraded answer saves against <see cref="PollyOpenThrow"/> is the exception.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(BenchmarkConfig))]
public class OpenPathBenchmarks
{
    private static readonly Uri Target = new("http://users.internal/users/42");

    private ServiceProvider _services = null!;
    private HttpClient _polly = null!;
    private HttpClient _pollyFallback = null!;
    private HttpClient _throw = null!;
    private HttpClient _degraded = null!;
    private HttpClient _cache = null!;

    [GlobalSetup]
    public async Task Setup()
    {
        var stub = new StubHandler();
        var services = new ServiceCollection();
        services.AddStubClient("polly", stub).AddPollyCircuitBreaker(Clients.PollyOpensFast());
        services.AddStubClient("polly-fallback", stub).AddPollyCircuitBreakerWithFallback(Clients.PollyOpensFast());
        services.AddStubClient("cb-throw", stub).AddCircuitBreaker(o => o.BreakDuration = Clients.LongBreak);
        services.AddStubClient("cb-degraded", stub).AddCircuitBreaker(o =>
        {
            o.BreakDuration = Clients.LongBreak;
            o.Fallback.Degraded.StatusCode = 503;
            o.Fallback.Degraded.ContentType = "application/json";
            o.Fallback.Degraded.Body = Clients.DegradedBody;
        });
        services.AddStubClient("cb-cache", stub).AddCircuitBreaker(o =>
        {
            o.BreakDuration = Clients.LongBreak;
            o.Fallback.Cache.Enabled = true;
            o.Fallback.Cache.MaxAge = Clients.LongBreak;
        });
        _services = services.BuildServiceProvider();

        var factory = _services.GetRequiredService<IHttpClientFactory>();
        _polly = factory.CreateClient("polly");
        _pollyFallback = factory.CreateClient("polly-fallback");
        _throw = factory.CreateClient("cb-throw");
        _degraded = factory.CreateClient("cb-degraded");
        _cache = factory.CreateClient("cb-cache");

        // Prime the cache with a good response (its body read to the end, as a caller does), then open every circuit.
        stub.Body = Encoding.UTF8.GetBytes("""{"id":42,"name":"Ada"}""");
        _ = await _cache.GetStringAsync(Target);
        stub.Body = null;
        await Clients.FailAsync(_polly, stub, Target, 5);
        await Clients.FailAsync(_pollyFallback, stub, Target, 5);
        foreach (var client in new[] { _throw, _degraded, _cache })
        {
            await Clients.FailAsync(client, stub, Target, 5); // FailureThreshold 5
        }

        foreach (var name in new[] { "cb-throw", "cb-degraded", "cb-cache" })
        {
            Clients.Check(Clients.StateOf(_services, name, Target) == CircuitState.Open, $"{name} is open");
        }

        await CheckRejectedAsync();
    }

    [GlobalCleanup]
    public void Cleanup() => _services.Dispose();

    [Benchmark(Baseline = true)]
    public async Task PollyOpenThrow()
    {
        try
        {
            using var response = await _polly.GetAsync(Target);
        }
        catch (BrokenCircuitException)
        {
        }
    }

    /// <summary>For reference: Polly's open circuit answered by Polly's fallback strategy, nothing thrown.</summary>
    [Benchmark]
    public async Task PollyOpenFallback()
    {
        using var response = await _pollyFallback.GetAsync(Target);
    }

    [Benchmark]
    public async Task CircuitBreakerOpenThrow()
    {
        try
        {
            using var response = await _throw.GetAsync(Target);
        }
        catch (CircuitOpenException)
        {
        }
    }

    [Benchmark]
    public async Task CircuitBreakerOpenDegraded()
    {
        using var response = await _degraded.GetAsync(Target);
    }

    [Benchmark]
    public async Task CircuitBreakerOpenCache()
    {
        using var response = await _cache.GetAsync(Target);
    }

    /// <summary>Each benchmark measures the path its name says: one call of each, checked.</summary>
    private async Task CheckRejectedAsync()
    {
        var pollyThrew = false;
        try
        {
            using var response = await _polly.GetAsync(Target);
        }
        catch (BrokenCircuitException)
        {
            pollyThrew = true;
        }

        Clients.Check(pollyThrew, "Polly's circuit is open");

        // Polly's fallback answers only a BrokenCircuitException: a closed call would come back 200 without the header.
        using (var pollyFallback = await _pollyFallback.GetAsync(Target))
        {
            Clients.Check(FallbackOf(pollyFallback) == "degraded", "Polly's circuit is open and its fallback answers");
        }

        var threw = false;
        try
        {
            using var response = await _throw.GetAsync(Target);
        }
        catch (CircuitOpenException)
        {
            threw = true;
        }

        Clients.Check(threw, "the open circuit throws CircuitOpenException");

        using (var degraded = await _degraded.GetAsync(Target))
        {
            Clients.Check(FallbackOf(degraded) == "degraded", "the degraded fallback answers");
        }

        using var cached = await _cache.GetAsync(Target);
        Clients.Check(FallbackOf(cached) == "cache", "the cache fallback answers");
        Clients.Check((await cached.Content.ReadAsStringAsync()).Contains("Ada", StringComparison.Ordinal), "the cached body is replayed");
    }

    private static string? FallbackOf(HttpResponseMessage response) =>
        response.Headers.TryGetValues("X-Circuit-Fallback", out var values) ? values.FirstOrDefault() : null;
}
