using BenchmarkDotNet.Attributes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Http.Resilience;

namespace CircuitBreaker.Http.Benchmarks;

/// <summary>
/// The closed path as <see cref="ClosedPathBenchmarks"/>, over a stub that answers asynchronously (after a yield), as
/// a network handler does. A synchronous answer lets every handler above the stub skip its own asynchronous
/// completion, so this is where what an asynchronous completion costs each breaker shows.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(BenchmarkConfig))]
public class AsyncClosedPathBenchmarks
{
    private static readonly Uri Target = new("http://users.internal/users/42");

    private ServiceProvider _services = null!;
    private HttpClient _bare = null!;
    private HttpClient _circuitBreaker = null!;
    private HttpClient _polly = null!;

    [GlobalSetup]
    public async Task Setup()
    {
        var stub = new StubHandler { Asynchronous = true };
        var services = new ServiceCollection();
        services.AddStubClient("bare", stub);
        services.AddStubClient("cb", stub).AddCircuitBreaker();
        services.AddStubClient("polly", stub).AddPollyCircuitBreaker(new HttpCircuitBreakerStrategyOptions());
        _services = services.BuildServiceProvider();

        var factory = _services.GetRequiredService<IHttpClientFactory>();
        _bare = factory.CreateClient("bare");
        _circuitBreaker = factory.CreateClient("cb");
        _polly = factory.CreateClient("polly");
        foreach (var client in new[] { _bare, _circuitBreaker, _polly })
        {
            using var response = await client.GetAsync(Target);
            Clients.Check(response.IsSuccessStatusCode, "the closed path answers 200");
        }

        Clients.Check(Clients.StateOf(_services, "cb", Target) == CircuitState.Closed, "the circuit is closed");
    }

    [GlobalCleanup]
    public void Cleanup() => _services.Dispose();

    [Benchmark(Baseline = true)]
    public async Task BareAsync()
    {
        using var response = await _bare.GetAsync(Target);
    }

    [Benchmark]
    public async Task CircuitBreakerClosedAsync()
    {
        using var response = await _circuitBreaker.GetAsync(Target);
    }

    [Benchmark]
    public async Task PollyClosedAsync()
    {
        using var response = await _polly.GetAsync(Target);
    }
}
