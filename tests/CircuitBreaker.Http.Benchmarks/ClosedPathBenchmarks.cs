using BenchmarkDotNet.Attributes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Http.Resilience;
using Polly;

namespace CircuitBreaker.Http.Benchmarks;

/// <summary>
/// The closed path, paid on every request of a healthy service: a GET through a real <see cref="HttpClient"/>
/// with no breaker, with this library's defaults (<c>AttemptTimeout</c> on), and with Polly's circuit breaker
/// per authority. Δ columns are the cost each adds over <see cref="Bare"/>.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(BenchmarkConfig))]
public class ClosedPathBenchmarks
{
    private static readonly Uri Target = new("http://users.internal/users/42");

    private ServiceProvider _services = null!;
    private HttpClient _bare = null!;
    private HttpClient _circuitBreaker = null!;
    private HttpClient _polly = null!;
    private HttpClient _pollyWithTimeout = null!;

    [GlobalSetup]
    public async Task Setup()
    {
        var stub = new StubHandler();
        var services = new ServiceCollection();
        services.AddStubClient("bare", stub);
        services.AddStubClient("cb", stub).AddCircuitBreaker(); // the defaults: AttemptTimeout 10 s
        services.AddStubClient("polly", stub).AddPollyCircuitBreaker(new HttpCircuitBreakerStrategyOptions());
        services.AddStubClient("polly-timeout", stub)
            .AddResilienceHandler("cb", b => b.AddTimeout(TimeSpan.FromSeconds(10)).AddCircuitBreaker(new HttpCircuitBreakerStrategyOptions()))
            .SelectPipelineByAuthority();
        _services = services.BuildServiceProvider();

        var factory = _services.GetRequiredService<IHttpClientFactory>();
        _bare = factory.CreateClient("bare");
        _circuitBreaker = factory.CreateClient("cb");
        _polly = factory.CreateClient("polly");
        _pollyWithTimeout = factory.CreateClient("polly-timeout");
        foreach (var client in new[] { _bare, _circuitBreaker, _polly, _pollyWithTimeout })
        {
            using var response = await client.GetAsync(Target); // creates the circuit, the pipeline, the handler chain
            Clients.Check(response.IsSuccessStatusCode, "the closed path answers 200");
        }

        Clients.Check(Clients.StateOf(_services, "cb", Target) == CircuitState.Closed, "the circuit is closed");
    }

    [GlobalCleanup]
    public void Cleanup() => _services.Dispose();

    [Benchmark(Baseline = true)]
    public async Task Bare()
    {
        using var response = await _bare.GetAsync(Target);
    }

    [Benchmark]
    public async Task CircuitBreakerClosed()
    {
        using var response = await _circuitBreaker.GetAsync(Target);
    }

    [Benchmark]
    public async Task PollyClosed()
    {
        using var response = await _polly.GetAsync(Target);
    }

    /// <summary>For reference: Polly's circuit behind its own 10 s timeout strategy, what a per-attempt timeout costs it.</summary>
    [Benchmark]
    public async Task PollyClosedWithTimeout()
    {
        using var response = await _pollyWithTimeout.GetAsync(Target);
    }
}
