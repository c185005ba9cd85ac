using CircuitBreaker.Http.Tests.TestSupport;
using Microsoft.Extensions.Time.Testing;

namespace CircuitBreaker.Http.Tests.Fleet;

/// <summary>
/// A fleet of three instances (a, b, c) of one app, a real redis-server and a real Kestrel downstream, on one fake
/// clock, under a key prefix of their own.
/// </summary>
internal sealed class FleetTestBed : IAsyncDisposable
{
    private FleetTestBed(RedisServer redis, KestrelDownstream downstream, FakeTimeProvider time, string keyPrefix, FleetInstance[] instances)
    {
        Redis = redis;
        KeyPrefix = keyPrefix;
        Downstream = downstream;
        Time = time;
        Instances = instances;
    }

    public RedisServer Redis { get; }

    public KestrelDownstream Downstream { get; }

    public FakeTimeProvider Time { get; }

    /// <summary>The fleet's key prefix, for an instance that joins it later.</summary>
    public string KeyPrefix { get; }

    public IReadOnlyList<FleetInstance> Instances { get; }

    public FleetInstance A => Instances[0];

    public FleetInstance B => Instances[1];

    public FleetInstance C => Instances[2];

    /// <param name="aCannotReachTheDownstream">Whether instance a has a local network fault: its every request fails to connect.</param>
    /// <param name="fleet">Changes to every instance's fleet options.</param>
    /// <param name="breaker">Changes to every instance's circuit breaker options.</param>
    public static async Task<FleetTestBed> StartAsync(
        bool aCannotReachTheDownstream = false,
        Action<Redis.RedisCoordinationOptions>? fleet = null,
        Action<CircuitBreakerOptions>? breaker = null)
    {
        var redis = await RedisServer.StartAsync();
        var downstream = await KestrelDownstream.StartAsync();
        var time = new FakeTimeProvider();
        var prefix = "test-" + Guid.NewGuid().ToString("N")[..8];
        var instances = new[]
        {
            await FleetInstance.StartAsync("a", downstream, redis, time, prefix, brokenPath: aCannotReachTheDownstream, fleet, breaker: breaker),
            await FleetInstance.StartAsync("b", downstream, redis, time, prefix, fleet: fleet, breaker: breaker),
            await FleetInstance.StartAsync("c", downstream, redis, time, prefix, fleet: fleet, breaker: breaker),
        };
        return new FleetTestBed(redis, downstream, time, prefix, instances);
    }

    public CircuitState StateOf(FleetInstance instance) => instance.StateOf(Downstream);

    public async ValueTask DisposeAsync()
    {
        foreach (var instance in Instances)
        {
            await instance.DisposeAsync();
        }

        await Downstream.DisposeAsync();
        await Redis.DisposeAsync();
    }
}
