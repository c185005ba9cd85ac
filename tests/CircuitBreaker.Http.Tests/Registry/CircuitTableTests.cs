using CircuitBreaker.Http.Tests.TestSupport;
using Microsoft.Extensions.DependencyInjection;

namespace CircuitBreaker.Http.Tests.Registry;

/// <summary>
/// The client's table of circuits (<see cref="CircuitTable"/>), through <see cref="ClientCircuits"/>, which owns its
/// lock: lookups without a lock must never hand out a second circuit for a host, however the table changes meanwhile.
/// </summary>
public sealed class CircuitTableTests
{
    [Fact]
    public void GetOrCreate_ManyHosts_KeepsOneCircuitPerHostThroughEveryGrowth()
    {
        using var harness = new BreakerHarness(o => o.MaxCircuits = 10_000);
        var circuits = Circuits(harness);

        // 5,000 hosts take the table from 16 slots through nine growths.
        var first = Enumerable.Range(0, 5_000).Select(i => circuits.GetOrCreate(HostUri(i))).ToArray();

        Assert.Equal(5_000, circuits.Count);
        Assert.Equal(5_000, first.Distinct().Count());
        for (var i = 0; i < first.Length; i++)
        {
            Assert.Same(first[i], circuits.GetOrCreate(HostUri(i)));
            Assert.Equal($"http://h{i}.test:80", first[i].Key.Authority);
        }

        Assert.Equal(first.ToHashSet(), circuits.Entries.ToHashSet());
    }

    [Fact]
    public void GetOrCreate_SameHostAnotherSchemeOrPort_IsAnotherCircuit()
    {
        using var harness = new BreakerHarness();
        var circuits = Circuits(harness);

        var http = circuits.GetOrCreate(new Uri("http://users.test/"));
        var https = circuits.GetOrCreate(new Uri("https://users.test/"));
        var port = circuits.GetOrCreate(new Uri("http://users.test:8080/"));

        Assert.Equal(3, new[] { http, https, port }.Distinct().Count());
        Assert.Same(https, circuits.GetOrCreate(new Uri("https://users.test:443/other")));
    }

    [Fact]
    public void Eviction_RemovesCircuitsFromTheTable_AndKeepsTheRestFindable()
    {
        using var harness = new BreakerHarness(o => o.MaxCircuits = 100);
        var circuits = Circuits(harness);
        var created = Enumerable.Range(0, 100).Select(i => circuits.GetOrCreate(HostUri(i))).ToArray();

        // The 101st circuit evicts a tenth of 100: the ten least recently used, which are the first ten created.
        circuits.GetOrCreate(HostUri(100));
        for (var i = 10; i < 100; i++)
        {
            Assert.Same(created[i], circuits.GetOrCreate(HostUri(i)));
        }

        Assert.Equal(91, circuits.Count);
        Assert.Equal(91, circuits.Entries.Count());
        Assert.All(created.Take(10), evicted => Assert.False(circuits.TryGet(evicted.Host, out _)));
        Assert.All(created.Skip(10), kept => Assert.True(circuits.TryGet(kept.Host, out var found) && ReferenceEquals(found, kept)));
    }

    [Fact]
    public void Eviction_OfTheFirstCircuitInARunOfCollidingSlots_LeavesTheOthersFindable()
    {
        using var harness = new BreakerHarness(o => o.MaxCircuits = 10);
        var circuits = Circuits(harness);

        // A host's hash is its name's hash XOR its port, so ports 16 apart start their probes at the same one of the
        // table's 16 slots: ten of them fill a run of adjacent slots, in the order they were created.
        var created = Enumerable.Range(0, 10).Select(i => circuits.GetOrCreate(new Uri($"http://users.test:{8000 + (16 * i)}/"))).ToArray();
        Assert.All(created, c => Assert.Equal(created[0].Hash & 15, c.Hash & 15));

        // The eleventh evicts the least recently used, the first: the head of the run is removed, and the others are
        // only found by probing past its slot.
        var eleventh = circuits.GetOrCreate(new Uri($"http://users.test:{8000 + (16 * 10)}/"));

        Assert.False(circuits.TryGet(created[0].Host, out _));
        Assert.All(created.Skip(1).Append(eleventh), kept => Assert.True(circuits.TryGet(kept.Host, out var found) && ReferenceEquals(found, kept)));
        Assert.Equal(10, circuits.Count);
    }

    [Fact]
    public void GetOrCreate_HostsChurningThroughAFullTable_KeepsEveryLiveCircuitFindable()
    {
        using var harness = new BreakerHarness(o => o.MaxCircuits = 100);
        var circuits = Circuits(harness);

        // 5,000 hosts through a client bounded at 100 circuits: each creation that finds it full evicts ten, and the
        // removed slots pile up until the table is rebuilt at its own size, many times over.
        var created = Enumerable.Range(0, 5_000).Select(i => circuits.GetOrCreate(HostUri(i))).ToArray();

        var live = circuits.Entries.ToArray();
        Assert.InRange(live.Length, 91, 100);
        Assert.Equal(live.Length, circuits.Count);
        Assert.All(created.TakeLast(90), recent => Assert.Contains(recent, live));
        Assert.All(live, kept => Assert.True(circuits.TryGet(kept.Host, out var found) && ReferenceEquals(found, kept)));
        Assert.All(created.Except(live), evicted => Assert.False(circuits.TryGet(evicted.Host, out _)));
    }

    [Fact]
    public async Task GetOrCreate_ConcurrentCallersWhileTheTableGrows_AllGetTheSameCircuitForAHost()
    {
        using var harness = new BreakerHarness(o => o.MaxCircuits = 100_000);
        var circuits = Circuits(harness);
        const int Hosts = 20_000;
        var callers = Math.Max(4, Environment.ProcessorCount * 2);
        using var start = new Barrier(callers);

        // Each caller walks every host from its own starting point, so that lookups of existing circuits race the
        // creations (and growths) of others throughout.
        var seen = await Task.WhenAll(Enumerable.Range(0, callers).Select(c => Task.Run(() =>
        {
            var mine = new CircuitEntry[Hosts];
            start.SignalAndWait();
            for (var n = 0; n < Hosts; n++)
            {
                var i = (n + (c * Hosts / callers)) % Hosts;
                mine[i] = circuits.GetOrCreate(HostUri(i));
            }

            return mine;
        })));

        Assert.Equal(Hosts, circuits.Count);
        for (var i = 0; i < Hosts; i++)
        {
            var circuit = seen[0][i];
            Assert.All(seen, mine => Assert.Same(circuit, mine[i]));
        }
    }

    private static ClientCircuits Circuits(BreakerHarness harness) =>
        harness.Services.GetRequiredService<CircuitBreakerRegistry>().GetClient(BreakerHarness.ClientName);

    private static Uri HostUri(int i) => new($"http://h{i}.test/path");
}
