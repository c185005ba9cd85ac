using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using BenchmarkDotNet.Attributes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;

namespace CircuitBreaker.Http.Benchmarks;

/// <summary>
/// The closed path with fleet mode on (issue 9): the same GET as <see cref="ClosedPathBenchmarks"/> through a client
/// whose circuits are coordinated through a real Redis, next to the same client without fleet mode. Fleet mode adds
/// nothing to the request path, so the two should cost the same. The setup starts <c>redis-server</c> from PATH on a
/// free loopback port (or uses <c>CIRCUITBREAKER_BENCH_REDIS</c>, a StackExchange.Redis configuration string) and fails
/// unless the coordinator reports itself connected.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(BenchmarkConfig))]
public class FleetBenchmarks
{
    private static readonly Uri Target = new("http://users.internal/users/42");

    private ServiceProvider _services = null!;
    private List<IHostedService> _hosted = null!;
    private Process? _redis;
    private HttpClient _bare = null!;
    private HttpClient _local = null!;
    private HttpClient _fleet = null!;

    [GlobalSetup]
    public async Task Setup()
    {
        var connection = Environment.GetEnvironmentVariable("CIRCUITBREAKER_BENCH_REDIS") ?? StartRedis();
        var stub = new StubHandler();
        var services = new ServiceCollection();
        services.AddHealthChecks().AddCircuitBreakerFleet();
        services.AddStubClient("bare", stub);
        services.AddStubClient("cb", stub).AddCircuitBreaker();
        services.AddStubClient("fleet", stub).AddCircuitBreaker().AddRedisCoordination(o => o.ConnectionString = connection);
        _services = services.BuildServiceProvider();
        _hosted = _services.GetServices<IHostedService>().ToList();
        foreach (var hosted in _hosted)
        {
            await hosted.StartAsync(CancellationToken.None);
        }

        var health = _services.GetRequiredService<HealthCheckService>();
        var deadline = Stopwatch.StartNew();
        while ((await health.CheckHealthAsync()).Status != HealthStatus.Healthy && deadline.Elapsed < TimeSpan.FromSeconds(15))
        {
            await Task.Delay(50);
        }

        Clients.Check((await health.CheckHealthAsync()).Status == HealthStatus.Healthy, "fleet mode is connected to Redis");

        var factory = _services.GetRequiredService<IHttpClientFactory>();
        _bare = factory.CreateClient("bare");
        _local = factory.CreateClient("cb");
        _fleet = factory.CreateClient("fleet");
        foreach (var client in new[] { _bare, _local, _fleet })
        {
            using var response = await client.GetAsync(Target);
            Clients.Check(response.IsSuccessStatusCode, "the closed path answers 200");
        }

        Clients.Check(Clients.StateOf(_services, "fleet", Target) == CircuitState.Closed, "the fleet circuit is closed");
    }

    [GlobalCleanup]
    public async Task Cleanup()
    {
        foreach (var hosted in _hosted)
        {
            await hosted.StopAsync(CancellationToken.None);
        }

        await _services.DisposeAsync();
        if (_redis is { HasExited: false })
        {
            _redis.Kill(entireProcessTree: true);
            await _redis.WaitForExitAsync();
        }

        _redis?.Dispose();
    }

    [Benchmark(Baseline = true)]
    public async Task Bare()
    {
        using var response = await _bare.GetAsync(Target);
    }

    [Benchmark]
    public async Task CircuitBreakerClosed()
    {
        using var response = await _local.GetAsync(Target);
    }

    [Benchmark]
    public async Task CircuitBreakerClosedFleet()
    {
        using var response = await _fleet.GetAsync(Target);
    }

    private string StartRedis()
    {
        int port;
        using (var listener = new TcpListener(IPAddress.Loopback, 0))
        {
            listener.Start();
            port = ((IPEndPoint)listener.LocalEndpoint).Port;
        }

        var start = new ProcessStartInfo("redis-server") { UseShellExecute = false, RedirectStandardOutput = true };
        foreach (var argument in new[] { "--port", $"{port}", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no" })
        {
            start.ArgumentList.Add(argument);
        }

        try
        {
            _redis = Process.Start(start);
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            throw new InvalidOperationException("FleetBenchmarks needs redis-server on PATH (apt-get install redis-server) or CIRCUITBREAKER_BENCH_REDIS.", ex);
        }

        _redis!.BeginOutputReadLine();
        return $"127.0.0.1:{port}";
    }
}
