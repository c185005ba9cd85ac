using BenchmarkDotNet.Attributes;
using Microsoft.Extensions.DependencyInjection;

namespace CircuitBreaker.Http.Benchmarks;

/// <summary>
/// The per-host lookup under a large working set: requests spread round-robin over <see cref="Hosts"/> distinct
/// hosts, each with a warm circuit (<c>MaxCircuits</c> raised so that none is evicted), against every request going
/// to one host. The bare client does the same, to show what many distinct <see cref="Uri"/>s cost without a breaker.
/// The setup of <see cref="CircuitBreakerManyHosts"/> also measures the memory the registry keeps per circuit and
/// prints it (<c>// Memory per circuit: ...</c>).
/// </summary>
[MemoryDiagnoser]
[Config(typeof(BenchmarkConfig))]
public class ManyHostsBenchmarks
{
    public const int Hosts = 100_000;

    private static readonly Uri SingleHost = new("http://users.internal/users/42");

    private readonly Uri[] _uris = new Uri[Hosts];
    private ServiceProvider _services = null!;
    private HttpClient _bare = null!;
    private HttpClient _circuitBreaker = null!;
    private int _next;

    [GlobalSetup(Targets = [nameof(BareSingleHost), nameof(CircuitBreakerSingleHost)])]
    public async Task SetupSingleHost()
    {
        Build();
        await SendAsync(_bare, SingleHost);
        await SendAsync(_circuitBreaker, SingleHost);
    }

    [GlobalSetup(Target = nameof(BareManyHosts))]
    public async Task SetupBareManyHosts()
    {
        Build();
        CreateUris();
        foreach (var uri in _uris)
        {
            await SendAsync(_bare, uri);
        }
    }

    [GlobalSetup(Target = nameof(CircuitBreakerManyHosts))]
    public async Task SetupCircuitBreakerManyHosts()
    {
        Build();
        await SendAsync(_circuitBreaker, SingleHost); // the first circuit, and the handler chain, outside the measurement
        var registry = _services.GetRequiredService<ICircuitBreakerRegistry>();

        // What the registry keeps per circuit: each is created by a request with a Uri of its own that dies with
        // the request, as in an app, so whatever the circuit holds on to is counted, and the garbage is not.
        var before = GC.GetTotalMemory(forceFullCollection: true);
        for (var i = 0; i < Hosts; i++)
        {
            await SendAsync(_circuitBreaker, new Uri(UriOf(i)));
        }

        var after = GC.GetTotalMemory(forceFullCollection: true);
        var circuits = registry.GetCircuits().Count(c => c.ClientName == "cb") - 1;
        Clients.Check(circuits == Hosts, $"{Hosts} circuits were created and none evicted ({circuits})");
        Console.WriteLine(
            $"// Memory per circuit: {(after - before) / (double)Hosts:F0} bytes ({Hosts:N0} circuits: {(after - before) / 1048576.0:F1} MiB; GC.GetTotalMemory before {before:N0}, after {after:N0})");

        CreateUris();
        foreach (var uri in _uris)
        {
            await SendAsync(_circuitBreaker, uri); // the benchmark's own Uris, warm as in the bare benchmark
        }
    }

    [GlobalCleanup]
    public void Cleanup() => _services.Dispose();

    [Benchmark(Baseline = true)]
    public async Task CircuitBreakerSingleHost()
    {
        using var response = await _circuitBreaker.GetAsync(SingleHost);
    }

    [Benchmark]
    public async Task CircuitBreakerManyHosts()
    {
        using var response = await _circuitBreaker.GetAsync(NextUri());
    }

    [Benchmark]
    public async Task BareSingleHost()
    {
        using var response = await _bare.GetAsync(SingleHost);
    }

    [Benchmark]
    public async Task BareManyHosts()
    {
        using var response = await _bare.GetAsync(NextUri());
    }

    internal static string UriOf(int i) => $"http://h{i}.hosts.internal/users/42";

    private static async Task SendAsync(HttpClient client, Uri uri)
    {
        using var response = await client.GetAsync(uri);
        Clients.Check(response.IsSuccessStatusCode, "the closed path answers 200");
    }

    private Uri NextUri()
    {
        var i = _next;
        _next = i + 1 == Hosts ? 0 : i + 1;
        return _uris[i];
    }

    private void CreateUris()
    {
        for (var i = 0; i < Hosts; i++)
        {
            _uris[i] = new Uri(UriOf(i));
        }
    }

    private void Build()
    {
        var stub = new StubHandler();
        var services = new ServiceCollection();
        services.AddStubClient("bare", stub);
        services.AddStubClient("cb", stub).AddCircuitBreaker(o => o.MaxCircuits = 2 * Hosts);
        _services = services.BuildServiceProvider();
        var factory = _services.GetRequiredService<IHttpClientFactory>();
        _bare = factory.CreateClient("bare");
        _circuitBreaker = factory.CreateClient("cb");
    }
}
