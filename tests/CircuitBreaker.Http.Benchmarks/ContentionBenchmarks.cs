using BenchmarkDotNet.Attributes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Http.Resilience;

namespace CircuitBreaker.Http.Benchmarks;

/// <summary>
/// Contention on one circuit: <see cref="Requests"/> requests per invocation to one host, split across
/// <see cref="Callers"/> concurrent callers (1, and as many as the machine has cores). Times are per request
/// (<c>OperationsPerInvoke</c>), so with N callers perfect scaling shows as 1/N of the single caller's time; the
/// per-core cost is Mean × N. Bare and Polly run the same way, for reference.
/// </summary>
/// <remarks>
/// Under the server GC, as the services that call many requests in parallel run (ASP.NET Core's default): every
/// request allocates about 1 KB whatever the client, and the workstation GC collects for all threads on one, so with
/// it the callers mostly take turns at the collector and the bare client's own per-core cost doubled on two cores.
/// The target is about what the breaker adds to that, which the server GC lets the benchmark see.
/// </remarks>
[MemoryDiagnoser]
[GcServer(true)]
[Config(typeof(BenchmarkConfig))]
public class ContentionBenchmarks
{
    public const int Requests = 8192;

    private static readonly Uri Target = new("http://users.internal/users/42");

    private ServiceProvider _services = null!;
    private HttpClient _bare = null!;
    private HttpClient _circuitBreaker = null!;
    private HttpClient _polly = null!;

    /// <summary>Gets or sets the number of concurrent callers.</summary>
    [ParamsSource(nameof(CallerCounts))]
    public int Callers { get; set; }

    public static IEnumerable<int> CallerCounts => new[] { 1, Environment.ProcessorCount }.Distinct();

    [GlobalSetup]
    public async Task Setup()
    {
        var stub = new StubHandler();
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
            await RunAsync(client, Callers * 16);
        }

        Clients.Check(Clients.StateOf(_services, "cb", Target) == CircuitState.Closed, "the circuit is closed");
    }

    [GlobalCleanup]
    public void Cleanup() => _services.Dispose();

    [Benchmark(Baseline = true, OperationsPerInvoke = Requests)]
    public Task Bare() => RunAsync(_bare, Requests);

    [Benchmark(OperationsPerInvoke = Requests)]
    public Task CircuitBreaker() => RunAsync(_circuitBreaker, Requests);

    [Benchmark(OperationsPerInvoke = Requests)]
    public Task Polly() => RunAsync(_polly, Requests);

    private Task RunAsync(HttpClient client, int requests)
    {
        var callers = new Task[Callers];
        for (var c = 0; c < callers.Length; c++)
        {
            var share = (requests / callers.Length) + (c < requests % callers.Length ? 1 : 0);
            callers[c] = Task.Run(() => CallAsync(client, share));
        }

        return Task.WhenAll(callers);
    }

    private static async Task CallAsync(HttpClient client, int count)
    {
        for (var i = 0; i < count; i++)
        {
            using var response = await client.GetAsync(Target);
        }
    }
}
