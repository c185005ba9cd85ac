using CircuitBreaker.Http.Tests.TestSupport;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Time.Testing;
using StackExchange.Redis;

namespace CircuitBreaker.Http.Tests.Fleet;

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class FleetGroup
{
    public const string Name = "Fleet mode against a real Redis";
}

/// <summary>
/// Fleet mode end to end: three in-process instances (separate service providers, one "users" client each), a real
/// Kestrel downstream and a real redis-server on loopback. Quorum 2, FailureThreshold 3, a 10 s break on a fake clock
/// shared by the instances; everything that happens in the background is awaited through its log event, never slept on.
/// </summary>
[Collection(FleetGroup.Name)]
public sealed class RedisFleetTests
{
    private static readonly TimeSpan Bounded = TimeSpan.FromSeconds(20);

    [SkippableFact]
    public async Task FailuresOnOneInstanceOnly_DoNotOpenTheCircuitForTheFleet()
    {
        await using var bed = await FleetTestBed.StartAsync(aCannotReachTheDownstream: true);
        var (downstream, broken, b, c) = (bed.Downstream, bed.A, bed.B, bed.C);

        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(nameof(HttpRequestException), await broken.GetAsync());
        }

        Assert.Equal(CircuitState.Open, broken.StateOf(downstream));
        await broken.Logs.WaitAsync("FleetVoted", Bounded);
        Assert.Contains("1 of 2", Assert.Single(broken.Logs.Messages("FleetVoted")), StringComparison.Ordinal);

        var answers = new List<string>();
        for (var i = 0; i < 5; i++)
        {
            answers.Add(await b.GetAsync());
            answers.Add(await c.GetAsync());
        }

        Assert.All(answers, a => Assert.Equal("200", a));
        Assert.Equal(10, downstream.RequestCount);
        Assert.Equal(CircuitState.Closed, b.StateOf(downstream));
        Assert.Equal(CircuitState.Closed, c.StateOf(downstream));
        Assert.Empty(b.Logs.Messages("FleetCircuitOpened"));
        Assert.Empty(c.Logs.Messages("FleetCircuitOpened"));
    }

    /// <remarks>
    /// Shared configuration (one appsettings.json for every replica) is the natural place to set InstanceName. Were the
    /// name the identity, a and b would be one vote, and each would take the other's decisions for its own.
    /// </remarks>
    [SkippableFact]
    public async Task InstancesGivenOneInstanceName_StillCountAsSeparateVotes()
    {
        await using var bed = await FleetTestBed.StartAsync(fleet: o => o.InstanceName = "orders-api");
        var (downstream, a, b, c) = (bed.Downstream, bed.A, bed.B, bed.C);
        downstream.RespondWith(503);

        await OpenByQuorumAsync(downstream, a, b, c);

        Assert.Contains("instance 'orders-api:", Assert.Single(c.Logs.Messages("FleetCircuitOpened")), StringComparison.Ordinal);
        Assert.Equal(2 * 3, downstream.RequestCount);
    }

    [SkippableFact]
    public async Task AnEmptyInstanceName_GetsTheMachineNameAndProcessId()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var downstream = await KestrelDownstream.StartAsync();
        var prefix = "test-" + Guid.NewGuid().ToString("N")[..8];

        // An unset pod-name variable reads as an empty value.
        await using var a = await FleetInstance.StartAsync("", downstream, redis, new FakeTimeProvider(), prefix);

        Assert.Contains($"instance '{Environment.MachineName}:{Environment.ProcessId}:", Assert.Single(a.Logs.Messages("FleetConnected")), StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task FailuresOnAQuorum_OpenTheCircuitOnEveryInstance_AndTheDownstreamSeesOnlyTheQuorumsFailures()
    {
        await using var bed = await FleetTestBed.StartAsync();
        var (downstream, a, b, c) = (bed.Downstream, bed.A, bed.B, bed.C);
        downstream.RespondWith(503);

        await OpenByQuorumAsync(downstream, a, b, c);

        for (var i = 0; i < 5; i++)
        {
            Assert.Equal(nameof(CircuitOpenException), await c.GetAsync());
            Assert.Equal(nameof(CircuitOpenException), await a.GetAsync());
        }

        Assert.Equal(2 * 3, downstream.RequestCount); // the quorum's FailureThreshold failures, and nothing from c
    }

    [SkippableFact]
    public async Task PercentageQuorum_CountsTheLiveInstancesFromTheirHeartbeats()
    {
        await using var bed = await FleetTestBed.StartAsync(fleet: o => o.Quorum = "100%");
        var (downstream, a, b, c) = (bed.Downstream, bed.A, bed.B, bed.C);
        downstream.RespondWith(503);

        for (var i = 0; i < 3; i++)
        {
            await a.GetAsync();
            await b.GetAsync();
        }

        await b.Logs.WaitAsync("FleetVoted", Bounded);
        await a.Logs.WaitAsync("FleetVoted", Bounded);
        var votes = a.Logs.Messages("FleetVoted").Concat(b.Logs.Messages("FleetVoted")).ToList();
        Assert.Contains(votes, v => v.Contains("2 of 3 instances needed (3 live)", StringComparison.Ordinal));
        Assert.Equal(CircuitState.Closed, c.StateOf(downstream)); // two of three live instances are not 100 %

        for (var i = 0; i < 3; i++)
        {
            await c.GetAsync();
        }

        await c.Logs.WaitAsync("FleetCircuitOpened", Bounded); // the third vote makes 100 %
        Assert.Contains("3 of 3 instances needed (3 live)", Assert.Single(c.Logs.Messages("FleetVoted")), StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task AfterAFleetWideBreak_ExactlyOneInstanceProbes_AndItsVerdictClosesEveryInstance()
    {
        await using var bed = await FleetTestBed.StartAsync();
        var (downstream, a, b, c) = (bed.Downstream, bed.A, bed.B, bed.C);
        var fleet = bed.Instances.ToArray();
        downstream.RespondWith(503);
        await OpenByQuorumAsync(downstream, a, b, c);

        downstream.RespondWith(200);
        var before = downstream.RequestCount;
        var closed = fleet.Select(i => i.WhenState(downstream, CircuitState.Closed)).ToList();

        // The break ends for every instance at once (one clock); each races for the probe lease.
        bed.Time.Advance(TimeSpan.FromSeconds(15));
        await Task.WhenAll(fleet.Select(i => i.Logs.WaitAnyAsync(Bounded, "FleetProbeLeaseWon", "FleetProbeLeaseLost")));
        var prober = Assert.Single(fleet, i => i.Logs.Messages("FleetProbeLeaseWon").Count == 1);

        var answers = await Task.WhenAll(fleet.Select(i => i.GetAsync()));

        Assert.Equal(before + 1, downstream.RequestCount);
        Assert.Equal("200", answers[Array.IndexOf(fleet, prober)]);
        Assert.Equal(2, answers.Count(r => r == nameof(CircuitOpenException)));
        await Task.WhenAll(closed).WaitAsync(Bounded);
        Assert.All(fleet, i => Assert.Equal(CircuitState.Closed, i.StateOf(downstream)));

        // The coordinator logs the fleet's close once the circuit has closed, so the log can trail the state change.
        var others = fleet.Where(i => i != prober).ToList();
        await Task.WhenAll(others.Select(i => i.Logs.WaitAsync("FleetCircuitClosed", Bounded)));
        Assert.All(others, i => Assert.Single(i.Logs.Messages("FleetCircuitClosed")));
    }

    /// <remarks>
    /// A stopped coordinator hears no verdict of the fleet any more, so it must not leave its circuits waiting for one:
    /// like an instance that lost Redis, a stopped one lets them decide locally. The host stops the coordinator with
    /// the other hosted services, and traffic can still go out after that (a worker's last calls, a shutdown hook).
    /// </remarks>
    [SkippableFact]
    public async Task AStoppedInstance_ReleasesTheFleetsHolds_AndProbesOnItsOwnAfterTheBreak()
    {
        await using var bed = await FleetTestBed.StartAsync();
        var (downstream, a, b, c) = (bed.Downstream, bed.A, bed.B, bed.C);
        downstream.RespondWith(503);
        await OpenByQuorumAsync(downstream, a, b, c);

        await c.StopHostedServicesAsync();
        downstream.RespondWith(200);
        bed.Time.Advance(TimeSpan.FromSeconds(15)); // past the 10 s break, well within the 30 s probe wait

        Assert.Equal("200", await c.GetAsync()); // its own probe, not CircuitOpenException until the probe wait ends
        Assert.Equal(CircuitState.Closed, c.StateOf(downstream));
    }

    /// <remarks>
    /// Stopping ends the coordinator's loop, but the connection (and its subscription to the fleet's channel) lasts until
    /// the container disposes it. A fleet open heard in between must not hold the circuit again: the stopped instance
    /// can no longer win the probe lease, so it would turn calls away until the probe wait ends.
    /// </remarks>
    [SkippableFact]
    public async Task AStoppedInstance_IsNotHeldAgainByAFleetOpenHeardBeforeItsConnectionCloses()
    {
        await using var bed = await FleetTestBed.StartAsync();
        var (downstream, a, b, c) = (bed.Downstream, bed.A, bed.B, bed.C);
        downstream.RespondWith(503);
        await OpenByQuorumAsync(downstream, a, b, c);
        await c.StopHostedServicesAsync();

        // The fleet's probe (a's or b's) fails: the prober reopens the circuit for the fleet and publishes it.
        bed.Time.Advance(TimeSpan.FromSeconds(11));
        var racers = new[] { a, b };
        await Task.WhenAll(racers.Select(i => i.Logs.WaitAnyAsync(Bounded, "FleetProbeLeaseWon", "FleetProbeLeaseLost")));
        var prober = Assert.Single(racers, i => i.Logs.Messages("FleetProbeLeaseWon").Count == 1);
        var reopened = racers.Single(i => i != prober).WhenState(downstream, CircuitState.Open, CircuitChangeSource.Fleet);
        Assert.Equal("503", await prober.GetAsync());
        await reopened.WaitAsync(Bounded);

        // The fleet's open has reached c's connection too (it went to the other instance at once).
        await c.Logs.WaitCountAsync("FleetCircuitOpened", 2, Bounded);

        downstream.RespondWith(200);
        bed.Time.Advance(TimeSpan.FromSeconds(25)); // past every break, within the 30 s probe wait after it

        Assert.Equal("200", await c.GetAsync()); // c's own probe, not CircuitOpenException until the probe wait ends
        Assert.Equal(CircuitState.Closed, c.StateOf(downstream));
    }

    /// <remarks>
    /// FleetCircuitOpened is logged for a circuit that opens for the whole fleet, whether a quorum opened it or the fleet's
    /// probe failed, and by the instance that decided it as by those that apply it.
    /// </remarks>
    [SkippableFact]
    public async Task WhenTheFleetsProbeFails_TheProberLogsTheFleetsOpenAsTheOthersDo()
    {
        await using var bed = await FleetTestBed.StartAsync();
        var (downstream, a, b, c) = (bed.Downstream, bed.A, bed.B, bed.C);
        var fleet = bed.Instances.ToArray();
        downstream.RespondWith(503);
        await OpenByQuorumAsync(downstream, a, b, c);
        await Task.WhenAll(fleet.Select(i => i.Logs.WaitAsync("FleetCircuitOpened", Bounded)));

        bed.Time.Advance(TimeSpan.FromSeconds(11));
        await Task.WhenAll(fleet.Select(i => i.Logs.WaitAnyAsync(Bounded, "FleetProbeLeaseWon", "FleetProbeLeaseLost")));
        var prober = Assert.Single(fleet, i => i.Logs.Messages("FleetProbeLeaseWon").Count == 1);
        var others = fleet.Where(i => i != prober).ToList();
        var othersReopen = others.Select(i => i.WhenState(downstream, CircuitState.Open, CircuitChangeSource.Fleet)).ToList();
        Assert.Equal("503", await prober.GetAsync());
        await Task.WhenAll(othersReopen).WaitAsync(Bounded);

        Assert.All(others, i => Assert.Equal(2, i.Logs.Messages("FleetCircuitOpened").Count));
        var reopened = prober.Logs.Messages("FleetCircuitOpened");
        Assert.Equal(2, reopened.Count);
        Assert.Contains($"decided by instance '{prober.Name}:", reopened[1], StringComparison.Ordinal);
    }

    /// <remarks>
    /// The fleet's break is over and one instance probes for all; the others turn calls away until its verdict. An
    /// instance that joins then (scaled out during the incident, or back from an outage) is part of the fleet too: it
    /// must wait for the verdict, not send all its traffic to the downstream that is being probed.
    /// </remarks>
    [SkippableFact]
    public async Task AnInstanceJoiningWhileTheFleetsProbeAwaitsItsVerdict_WaitsForTheVerdictToo()
    {
        await using var bed = await FleetTestBed.StartAsync();
        var (downstream, a, b, c) = (bed.Downstream, bed.A, bed.B, bed.C);
        var fleet = bed.Instances.ToArray();
        downstream.RespondWith(503);
        await OpenByQuorumAsync(downstream, a, b, c);

        bed.Time.Advance(TimeSpan.FromSeconds(11));
        await Task.WhenAll(fleet.Select(i => i.Logs.WaitAnyAsync(Bounded, "FleetProbeLeaseWon", "FleetProbeLeaseLost")));
        downstream.RespondWith(200);
        var before = downstream.RequestCount;

        // Redis keeps the real time, which the fake clock of the instances does not move: its record of the fleet's
        // break is ended here as it would be by now, a second ago.
        await WriteOpenEntriesAsync(bed.Redis, bed.KeyPrefix, nowMs => [new(downstream.Authority + " " + FleetInstance.ClientName, nowMs - 1000)]);

        Task? dHolds = null;
        await using var d = await FleetInstance.StartAsync("d", downstream, bed.Redis, bed.Time, bed.KeyPrefix, beforeStart: i => dHolds = i.WhenState(downstream, CircuitState.Open, CircuitChangeSource.Fleet));
        await dHolds!.WaitAsync(Bounded);

        for (var i = 0; i < 5; i++)
        {
            Assert.Equal(nameof(CircuitOpenException), await d.GetAsync());
        }

        Assert.Equal(before, downstream.RequestCount);
        await d.Logs.WaitAsync("FleetProbeLeaseLost", Bounded); // d raced for the lease too, and the prober has it

        // The verdict reaches d as it reaches the others.
        var prober = Assert.Single(fleet, i => i.Logs.Messages("FleetProbeLeaseWon").Count == 1);
        var dCloses = d.WhenState(downstream, CircuitState.Closed, CircuitChangeSource.Fleet);
        Assert.Equal("200", await prober.GetAsync());
        await dCloses.WaitAsync(Bounded);
        Assert.Equal("200", await d.GetAsync());
    }

    [SkippableFact]
    public async Task RedisKilledMidTest_RequestsFlowOnLocalBreakers_AndCoordinationResumesWhenRedisIsBack()
    {
        await using var bed = await FleetTestBed.StartAsync();
        var (downstream, a, b, c) = (bed.Downstream, bed.A, bed.B, bed.C);
        var fleet = bed.Instances.ToArray();

        await bed.Redis.KillAsync();
        await Task.WhenAll(fleet.Select(i => i.Logs.WaitAsync("FleetRedisUnavailable", Bounded)));

        var answers = new List<string>();
        for (var i = 0; i < 20; i++)
        {
            answers.AddRange(await Task.WhenAll(fleet.Select(f => f.GetAsync())));
        }

        Assert.All(answers, r => Assert.Equal("200", r));
        Assert.Equal(60, downstream.RequestCount); // every request answered by the downstream: none lost, none waited on Redis
        foreach (var instance in fleet)
        {
            var health = await instance.Services.GetRequiredService<HealthCheckService>().CheckHealthAsync();
            Assert.Equal(HealthStatus.Degraded, health.Status);
            Assert.Single(instance.Logs.Messages("FleetRedisUnavailable")); // logged once per outage, not per attempt
        }

        // Local breakers still break alone while Redis is away.
        downstream.RespondWith(503);
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal("503", await a.GetAsync());
        }

        Assert.Equal(CircuitState.Open, a.StateOf(downstream));
        Assert.Equal(CircuitState.Closed, c.StateOf(downstream));

        await bed.Redis.RestartAsync();
        await Task.WhenAll(fleet.Select(i => i.Logs.WaitAsync("FleetRedisRestored", TimeSpan.FromSeconds(60))));
        foreach (var instance in fleet)
        {
            var health = await instance.Services.GetRequiredService<HealthCheckService>().CheckHealthAsync();
            Assert.Equal(HealthStatus.Healthy, health.Status);
        }

        // a re-voted for the circuit it opened during the outage; b's failures now make the quorum, and c follows.
        await a.Logs.WaitAsync("FleetVoted", Bounded);
        var cOpens = c.WhenState(downstream, CircuitState.Open, CircuitChangeSource.Fleet);
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal("503", await b.GetAsync());
        }

        await cOpens.WaitAsync(Bounded);
        Assert.Equal(nameof(CircuitOpenException), await c.GetAsync());
    }

    /// <remarks>
    /// An app must start, and serve, while Redis is down; once Redis can be reached the instance joins the fleet and says
    /// so as every instance does (FleetConnected names it and the endpoints), besides the end of the outage it logged.
    /// </remarks>
    [SkippableFact]
    public async Task AnInstanceStartedWhileRedisIsUnreachable_ServesLocally_AndJoinsTheFleetOnceRedisCanBeReached()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var downstream = await KestrelDownstream.StartAsync();
        await using var path = TcpRelay.Start(redis.Port);
        path.Cut();
        var prefix = "test-" + Guid.NewGuid().ToString("N")[..8];
        await using var a = await FleetInstance.StartAsync("a", downstream, redis, new FakeTimeProvider(), prefix, redisPort: path.Port, awaitConnected: false);
        var health = a.Services.GetRequiredService<HealthCheckService>();

        Assert.Equal("200", await a.GetAsync());
        await a.Logs.WaitAsync("FleetRedisUnavailable", Bounded);
        Assert.Equal(HealthStatus.Degraded, (await health.CheckHealthAsync()).Status);

        path.Restore();
        await a.Logs.WaitAsync("FleetRedisRestored", TimeSpan.FromSeconds(60));
        Assert.Equal(HealthStatus.Healthy, (await health.CheckHealthAsync()).Status);

        // Logged by the rejoin just after FleetRedisRestored, on the coordinator's thread: waited for, not assumed.
        await a.Logs.WaitAsync("FleetConnected", Bounded);
        Assert.Contains("instance 'a:", Assert.Single(a.Logs.Messages("FleetConnected")), StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task RedisStalled_RequestsAndTransitionsNeverWaitForIt()
    {
        await using var bed = await FleetTestBed.StartAsync();
        var (downstream, a, b) = (bed.Downstream, bed.A, bed.B);

        // Shorter than StackExchange.Redis's 5 s command timeout, with room to spare: a loaded machine may start Redis's
        // sleep later than the vote is sent, and a vote that timed out would wait for a heartbeat on the fake clock, which
        // this test does not move. (At 5 s the vote timed out in one CI run of the whole suite.)
        var stall = await bed.Redis.StallAsync(TimeSpan.FromSeconds(3));
        var answers = new List<string>();
        for (var i = 0; i < 10; i++)
        {
            answers.Add(await b.GetAsync());
        }

        downstream.RespondWith(503);
        for (var i = 0; i < 5; i++)
        {
            answers.Add(await a.GetAsync()); // opens a's circuit: its vote waits for Redis, its calls do not
        }

        var finishedWhileRedisStalled = !stall.IsCompleted;
        await stall;

        Assert.True(finishedWhileRedisStalled, "every request was answered while Redis did not answer at all");
        Assert.Equal([.. Enumerable.Repeat("200", 10), "503", "503", "503", nameof(CircuitOpenException), nameof(CircuitOpenException)], answers);
        Assert.Equal(CircuitState.Open, a.StateOf(downstream));
        await a.Logs.WaitAsync("FleetVoted", Bounded); // and the vote went through once Redis was back
    }

    /// <remarks>
    /// An app stops within the host's shutdown budget (HostOptions.ShutdownTimeout), which every hosted service shares.
    /// A stalled Redis (here DEBUG SLEEP; equally an overloaded server or a network that drops packets) answers nothing
    /// before StackExchange.Redis's command timeout: stopping must not wait for its heartbeat in flight, for the
    /// courtesy of leaving the fleet, nor for the connection's close.
    /// </remarks>
    /// <remarks>
    /// A vote sent while Redis does not answer (a stall, a network blip shorter than a reconnect) times out. Dropped, it
    /// would leave this instance's evidence out of the quorum for the rest of its circuit's break: Redis counts as away
    /// instead, and the first heartbeat that reaches it again rejoins the fleet, which votes for the circuits open here.
    /// </remarks>
    [SkippableFact]
    public async Task AVoteThatTimesOut_IsCastAgainOnceRedisAnswers()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var downstream = await KestrelDownstream.StartAsync();
        var prefix = "test-" + Guid.NewGuid().ToString("N")[..8];
        var time = new FakeTimeProvider();
        await using var a = await FleetInstance.StartAsync(
            "a", downstream, redis, time, prefix, fleet: o => o.ConnectionString = redis.ConnectionString + ",asyncTimeout=500,syncTimeout=500");
        downstream.RespondWith(503);

        var stall = await redis.StallAsync(TimeSpan.FromSeconds(3));
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal("503", await a.GetAsync()); // opens a's circuit: its vote goes to a Redis that does not answer
        }

        // Mostly the vote times out (FleetOperationFailed); now and then the connection is declared failed first, and the
        // vote is not sent at all. Either way Redis is away, and the vote must come once it answers.
        await a.Logs.WaitAnyAsync(Bounded, "FleetOperationFailed", "FleetRedisUnavailable");
        await stall;
        Assert.Empty(a.Logs.Messages("FleetVoted"));

        time.Advance(TimeSpan.FromSeconds(5)); // the next heartbeat
        await a.Logs.WaitAsync("FleetVoted", Bounded);
        Assert.Equal(CircuitState.Open, a.StateOf(downstream));
    }

    [SkippableFact]
    public async Task StoppingAnInstanceWhileRedisIsStalled_IsPrompt_AndTheOthersCarryOn()
    {
        await using var bed = await FleetTestBed.StartAsync();
        var (downstream, a, b, c) = (bed.Downstream, bed.A, bed.B, bed.C);
        var timeout = TimeSpan.FromMilliseconds(ConfigurationOptions.Parse(bed.Redis.ConnectionString).AsyncTimeout);

        // Shorter than the timeout by a margin a loaded machine keeps, so that the others' heartbeats are late but not
        // failed: only a's stop is measured. Longer than the limit asserted below, which a stop that waited would miss.
        var stall = await bed.Redis.StallAsync(timeout * 0.6);
        bed.Time.Advance(TimeSpan.FromSeconds(5)); // a heartbeat of every instance, in flight while Redis sleeps
        var stopping = System.Diagnostics.Stopwatch.StartNew();
        await a.DisposeAsync();
        stopping.Stop();
        var stoppedWhileRedisStalled = !stall.IsCompleted;
        await stall;

        Assert.True(stopping.Elapsed < timeout / 2, $"stopping took {stopping.Elapsed.TotalMilliseconds:0} ms with a command timeout of {timeout.TotalMilliseconds:0} ms");
        Assert.True(stoppedWhileRedisStalled, "the stop returned while Redis did not answer at all");

        // b and c go on coordinating: their failures make the quorum of two.
        downstream.RespondWith(503);
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal("503", await b.GetAsync());
        }

        await b.Logs.WaitAsync("FleetVoted", Bounded);
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal("503", await c.GetAsync());
        }

        await Task.WhenAll(b.Logs.WaitAsync("FleetCircuitOpened", Bounded), c.Logs.WaitAsync("FleetCircuitOpened", Bounded));
        Assert.Empty(b.Logs.Messages("FleetRedisUnavailable"));
        Assert.Empty(c.Logs.Messages("FleetRedisUnavailable"));
    }

    /// <remarks>Leaving on a healthy Redis is immediate: a percentage quorum counts the fleet without the stopped instance at once.</remarks>
    [SkippableFact]
    public async Task StoppingAnInstance_LeavesTheFleetAtOnce()
    {
        await using var bed = await FleetTestBed.StartAsync();

        await bed.A.DisposeAsync();

        await using var mux = await ConnectionMultiplexer.ConnectAsync(bed.Redis.ConnectionString);
        var instances = await mux.GetDatabase().SortedSetRangeByRankAsync("{" + bed.KeyPrefix + "}:instances");
        Assert.Equal(["b", "c"], instances.Select(i => ((string)i!).Split(':')[0]).Order(StringComparer.Ordinal)); // names, without their suffixes
    }

    /// <remarks>
    /// An episode can end without a fleet close (its prober died, or no call reached it, and every instance probed
    /// alone after ProbeWait). Its entry in the fleet's open circuits must not stay until some instance joins or
    /// reconnects: with many short-lived hosts, the hash would grow between deploys.
    /// </remarks>
    [SkippableFact]
    public async Task AnOpenEntryWhoseBreakAndProbeWaitHavePassed_IsForgottenAtTheNextHeartbeat()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var downstream = await KestrelDownstream.StartAsync();
        var prefix = "test-" + Guid.NewGuid().ToString("N")[..8];
        var openKey = "{" + prefix + "}:open";
        const string Stale = "http://127.0.0.1:9 users";
        const string Foreign = "http://127.0.0.1:10 users";
        await using var mux = await ConnectionMultiplexer.ConnectAsync(redis.ConnectionString + ",allowAdmin=true");
        var db = mux.GetDatabase();
        var seconds = (long)(RedisValue)((RedisResult[])(await db.ExecuteAsync("TIME"))!)[0];
        await db.HashSetAsync(openKey, [new(downstream.Authority + " users", (seconds + 600) * 1000), new(Foreign, "another build's format")]);

        // Redis tells when the hash loses a field (keyspace notifications), so the heartbeat's work is awaited, not slept on.
        await db.ExecuteAsync("CONFIG", "SET", "notify-keyspace-events", "Kh");
        var removed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await mux.GetSubscriber().SubscribeAsync(RedisChannel.Literal("__keyspace@0__:" + openKey), (_, e) =>
        {
            if (e == "hdel")
            {
                removed.TrySetResult();
            }
        });

        // a joins (taking on the open circuit shows that its join, the one other place that forgets entries, is over),
        // and only then does the stale entry appear: a break that ended an hour ago, with ProbeWait long passed too.
        var time = new FakeTimeProvider();
        Task? aHolds = null;
        await using var a = await FleetInstance.StartAsync("a", downstream, redis, time, prefix, beforeStart: i => aHolds = i.WhenState(downstream, CircuitState.Open, CircuitChangeSource.Fleet));
        await aHolds!.WaitAsync(Bounded);
        await db.HashSetAsync(openKey, Stale, (seconds - 3600) * 1000);

        time.Advance(TimeSpan.FromSeconds(5)); // a's next heartbeat
        await removed.Task.WaitAsync(Bounded);

        var left = (await db.HashKeysAsync(openKey)).Select(f => (string)f!).Order(StringComparer.Ordinal);
        Assert.Equal(new[] { downstream.Authority + " users", Foreign }.Order(StringComparer.Ordinal), left); // a live episode, and what another build wrote, stay
        Assert.Empty(a.Logs.Messages("FleetRedisUnavailable")); // no reconnection did it
    }

    [SkippableFact]
    public async Task AfterAnOperatorReset_TheResetInstanceNoLongerCountsTowardsTheQuorum()
    {
        await using var bed = await FleetTestBed.StartAsync();

        await AfterAnOperatorOrder_OneMoreFailingInstanceDoesNotMakeTheQuorumAsync(bed, (a, key) =>
        {
            Assert.True(a.Registry.Reset(key));
            return Task.CompletedTask;
        });

        Assert.Equal(CircuitState.Closed, bed.A.StateOf(bed.Downstream));
    }

    [SkippableFact]
    public async Task AfterAnOperatorIsolate_TheIsolatedInstanceNoLongerCountsTowardsTheQuorum()
    {
        await using var bed = await FleetTestBed.StartAsync();

        await AfterAnOperatorOrder_OneMoreFailingInstanceDoesNotMakeTheQuorumAsync(bed, (a, key) =>
        {
            a.Registry.Isolate(key);
            return Task.CompletedTask;
        });

        Assert.Equal(CircuitState.Isolated, bed.A.StateOf(bed.Downstream));
    }

    /// <remarks>
    /// a's open circuit is evicted (MaxCircuits) by a call to another host: calls from a to the downstream go through
    /// again, on a fresh circuit, so a's vote must go, as after a reset. Kept, it would count towards the quorum for the
    /// rest of its window, and one more failing instance would open the circuit for everyone.
    /// </remarks>
    [SkippableFact]
    public async Task AfterItsOpenCircuitIsEvicted_AnInstanceNoLongerCountsTowardsTheQuorum()
    {
        await using var bed = await FleetTestBed.StartAsync(breaker: o => o.MaxCircuits = 1);

        await AfterAnOperatorOrder_OneMoreFailingInstanceDoesNotMakeTheQuorumAsync(bed, async (a, _) =>
        {
            // Port 1 of another loopback address: refused at once, a failure below the threshold of a new closed circuit.
            await Assert.ThrowsAsync<HttpRequestException>(() => a.Client.GetAsync(new Uri("http://127.0.0.2:1/")));
            Assert.Equal(CircuitState.Closed, a.StateOf(bed.Downstream)); // evicted: no circuit of a's turns the downstream's calls away
        });
    }

    /// <remarks>
    /// a alone loses Redis (a network fault between a and Redis; Redis and the other instances carry on) after voting.
    /// Meanwhile a's circuit probes and closes, and its vote cannot be withdrawn. Once a is back, that vote must not
    /// stay behind: b alone failing afterwards is one instance, not a quorum of two.
    /// </remarks>
    [SkippableFact]
    public async Task AVoteWhoseCircuitClosedWhileRedisWasAway_IsWithdrawnWhenRedisIsBack()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var downstream = await KestrelDownstream.StartAsync();
        await using var path = TcpRelay.Start(redis.Port);
        var time = new FakeTimeProvider();
        var prefix = "test-" + Guid.NewGuid().ToString("N")[..8];

        // a's heartbeats are left to the connection's own events, so that a's circuit can go through a break on the
        // fake clock without a heartbeat queued ahead of the close.
        await using var a = await FleetInstance.StartAsync("a", downstream, redis, time, prefix, fleet: o =>
        {
            o.HeartbeatInterval = TimeSpan.FromMinutes(5);
            o.InstanceExpiry = TimeSpan.FromMinutes(15);
        }, redisPort: path.Port);
        await using var b = await FleetInstance.StartAsync("b", downstream, redis, time, prefix);
        await using var c = await FleetInstance.StartAsync("c", downstream, redis, time, prefix);
        downstream.RespondWith(503);
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal("503", await a.GetAsync());
        }

        await a.Logs.WaitAsync("FleetVoted", Bounded);

        path.Cut();
        await a.Logs.WaitAsync("FleetRedisUnavailable", Bounded);
        downstream.RespondWith(200);
        time.Advance(TimeSpan.FromSeconds(11));
        Assert.Equal("200", await a.GetAsync()); // a's own probe: its circuit closes while it cannot tell the fleet
        Assert.Equal(CircuitState.Closed, a.StateOf(downstream));

        path.Restore();
        await a.Logs.WaitAsync("FleetRedisRestored", TimeSpan.FromSeconds(60));
        await a.Logs.WaitAsync("FleetVoteWithdrawn", Bounded);

        downstream.RespondWith(503);
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal("503", await b.GetAsync());
        }

        await b.Logs.WaitAsync("FleetVoted", Bounded);
        Assert.Contains("1 of 2", Assert.Single(b.Logs.Messages("FleetVoted")), StringComparison.Ordinal);
        Assert.Equal(CircuitState.Closed, c.StateOf(downstream));
        Assert.Equal("503", await c.GetAsync()); // c still calls the downstream on its own evidence
    }

    /// <remarks>
    /// The fleet's break is over and its probe awaits its verdict when a alone loses Redis. Its hold released, a probes
    /// by itself and its circuit closes: the downstream is back for a. Once a reconnects, the fleet's record (break over,
    /// probe wait still running) must not turn that healthy circuit back into one waiting for a verdict, turning a's
    /// calls away for the rest of ProbeWait.
    /// </remarks>
    [SkippableFact]
    public async Task ACircuitClosedByItsOwnProbeWhileRedisWasAway_StaysClosedWhenRedisIsBackDuringTheFleetsProbeWait()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var downstream = await KestrelDownstream.StartAsync();
        await using var path = TcpRelay.Start(redis.Port);
        var time = new FakeTimeProvider();
        var prefix = "test-" + Guid.NewGuid().ToString("N")[..8];
        await using var a = await FleetInstance.StartAsync("a", downstream, redis, time, prefix, redisPort: path.Port);
        await using var b = await FleetInstance.StartAsync("b", downstream, redis, time, prefix);
        await using var c = await FleetInstance.StartAsync("c", downstream, redis, time, prefix);
        downstream.RespondWith(503);
        await OpenByQuorumAsync(downstream, a, b, c);

        time.Advance(TimeSpan.FromSeconds(11));
        await Task.WhenAll(new[] { a, b, c }.Select(i => i.Logs.WaitAnyAsync(Bounded, "FleetProbeLeaseWon", "FleetProbeLeaseLost")));

        // Redis keeps the real time, which the fake clock of the instances does not move: its record of the fleet's
        // break is ended here as it would be by now, a second ago.
        await WriteOpenEntriesAsync(redis, prefix, nowMs => [new(downstream.Authority + " " + FleetInstance.ClientName, nowMs - 1000)]);

        path.Cut();
        await a.Logs.WaitAsync("FleetRedisUnavailable", Bounded);
        downstream.RespondWith(200);

        // a's own probe, once the outage has released a's hold (just after it is logged); a rejected call is no probe.
        var probing = System.Diagnostics.Stopwatch.StartNew();
        while (await a.GetAsync() != "200")
        {
            Assert.True(probing.Elapsed < Bounded, "a never probed by itself while Redis was away");
            await Task.Delay(10);
        }

        Assert.Equal(CircuitState.Closed, a.StateOf(downstream));

        var aReopens = a.WhenState(downstream, CircuitState.Open, CircuitChangeSource.Fleet);
        path.Restore();
        await a.Logs.WaitAsync("FleetRedisRestored", TimeSpan.FromSeconds(60));

        // The rejoin ends by withdrawing a's vote, as its circuit is closed; a reopened circuit would keep it.
        var withdrawn = a.Logs.WaitAsync("FleetVoteWithdrawn", Bounded);
        await Task.WhenAny(withdrawn, aReopens);
        Assert.False(aReopens.IsCompleted, "a's closed circuit was reopened by the fleet as a reconnected");
        await withdrawn;
        Assert.Equal(CircuitState.Closed, a.StateOf(downstream));
        Assert.Equal("200", await a.GetAsync());
    }

    /// <remarks>
    /// The fleet's prober loses Redis while its probe is in flight, and is back during the probe wait: the lease in
    /// Redis still names it, and the fleet waits for exactly that probe's verdict. The rejoin must neither discard the
    /// probe (by reopening the circuit from the fleet's record) nor make the prober wait for a prober; the verdict must
    /// reach the fleet.
    /// </remarks>
    [SkippableFact]
    public async Task TheProberBackFromAnOutageWithItsProbeInFlight_PublishesThatProbesVerdictToTheFleet()
    {
        await using var fleet = await RelayedFleet.StartAsync();
        var (downstream, time) = (fleet.Downstream, fleet.Time);
        downstream.RespondWith(503);
        await OpenByQuorumAsync(downstream, fleet.Instances[0], fleet.Instances[1], fleet.Instances[2]);

        time.Advance(TimeSpan.FromSeconds(11));
        await Task.WhenAll(fleet.Instances.Select(i => i.Logs.WaitAnyAsync(Bounded, "FleetProbeLeaseWon", "FleetProbeLeaseLost")));
        var prober = Assert.Single(fleet.Instances, i => i.Logs.Messages("FleetProbeLeaseWon").Count == 1);
        var others = fleet.Instances.Where(i => i != prober).ToList();

        // The probe reaches the downstream, which answers only when the test says so.
        var answer = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        downstream.RespondWhen(answer.Task);
        var arrived = downstream.NextRequestArrival();
        var probe = prober.GetAsync();
        await arrived.WaitAsync(Bounded);
        var before = downstream.RequestCount;

        fleet.PathOf(prober).Cut();
        await prober.Logs.WaitAsync("FleetRedisUnavailable", Bounded);
        await fleet.EndTheFleetsBreakInRedisAsync();

        var proberReopens = prober.WhenState(downstream, CircuitState.Open, CircuitChangeSource.Fleet);
        var othersClose = others.Select(i => i.WhenState(downstream, CircuitState.Closed, CircuitChangeSource.Fleet)).ToList();
        fleet.PathOf(prober).Restore();
        await prober.Logs.WaitAsync("FleetRedisRestored", TimeSpan.FromSeconds(60));

        // The rejoin ends with the prober probing for the fleet again, or waiting for a prober.
        await prober.Logs.WaitCountAsync("FleetProbeLeaseWon", 2, Bounded, "FleetProbeLeaseLost");
        Assert.False(proberReopens.IsCompleted, "the rejoin reopened the prober's circuit, discarding its probe in flight");
        Assert.Empty(prober.Logs.Messages("FleetProbeLeaseLost"));

        answer.SetResult();
        Assert.Equal("200", await probe);
        Assert.Equal(CircuitState.Closed, prober.StateOf(downstream));
        await Task.WhenAll(othersClose).WaitAsync(Bounded);
        Assert.All(others, i => Assert.Contains($"instance '{prober.Name}:", Assert.Single(i.Logs.Messages("FleetCircuitClosed")), StringComparison.Ordinal));
        Assert.Equal(before, downstream.RequestCount); // that probe was the fleet's only call
    }

    /// <remarks>
    /// The fleet's prober loses Redis, and its probe fails meanwhile: its circuit opens for another break of its own. Back
    /// during the probe wait, it waits with the fleet; when its break ends it races for the lease, which still names it.
    /// It must win that race, not lose it to itself and leave the whole fleet without a prober until ProbeWait ends.
    /// </remarks>
    [SkippableFact]
    public async Task TheProberBackFromAnOutage_WinsTheLeaseThatStillNamesIt()
    {
        await using var fleet = await RelayedFleet.StartAsync();
        var (downstream, time) = (fleet.Downstream, fleet.Time);
        downstream.RespondWith(503);
        await OpenByQuorumAsync(downstream, fleet.Instances[0], fleet.Instances[1], fleet.Instances[2]);

        time.Advance(TimeSpan.FromSeconds(11));
        await Task.WhenAll(fleet.Instances.Select(i => i.Logs.WaitAnyAsync(Bounded, "FleetProbeLeaseWon", "FleetProbeLeaseLost")));
        var prober = Assert.Single(fleet.Instances, i => i.Logs.Messages("FleetProbeLeaseWon").Count == 1);
        var others = fleet.Instances.Where(i => i != prober).ToList();

        fleet.PathOf(prober).Cut();
        await prober.Logs.WaitAsync("FleetRedisUnavailable", Bounded);
        Assert.Equal("503", await prober.GetAsync()); // its probe, whose verdict the fleet does not hear
        Assert.Equal(CircuitState.Open, prober.StateOf(downstream));
        await fleet.EndTheFleetsBreakInRedisAsync();

        fleet.PathOf(prober).Restore();
        await prober.Logs.WaitAsync("FleetRedisRestored", TimeSpan.FromSeconds(60));
        var proberHalfOpens = prober.WhenState(downstream, CircuitState.HalfOpen);

        // The prober's own break (10 s) ends; the others' holds last for ProbeWait's two minutes after the fleet's break.
        time.Advance(TimeSpan.FromSeconds(15));
        await proberHalfOpens.WaitAsync(Bounded);
        await prober.Logs.WaitCountAsync("FleetProbeLeaseWon", 2, Bounded, "FleetProbeLeaseLost");
        Assert.Empty(prober.Logs.Messages("FleetProbeLeaseLost"));

        downstream.RespondWith(200);
        var othersClose = others.Select(i => i.WhenState(downstream, CircuitState.Closed, CircuitChangeSource.Fleet)).ToList();
        Assert.Equal("200", await prober.GetAsync());
        await Task.WhenAll(othersClose).WaitAsync(Bounded);
    }

    /// <remarks>
    /// The fleet's open circuits are applied as an instance joins. An entry this instance cannot apply (here an
    /// authority it cannot parse, or a value another build wrote; equally a client whose options are invalid here)
    /// says nothing about Redis: it must not mark Redis unavailable, which would release every hold and stop this
    /// instance's votes, again at every heartbeat.
    /// </remarks>
    [SkippableFact]
    public async Task AnOpenEntryThisInstanceCannotApply_DoesNotMarkRedisUnavailableForever()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var downstream = await KestrelDownstream.StartAsync();
        var prefix = "test-" + Guid.NewGuid().ToString("N")[..8];
        const string Elsewhere = "http://127.0.0.1:9";
        await WriteOpenEntriesAsync(
            redis,
            prefix,
            nowMs => [new("bogus users", nowMs + 600_000), new("http://127.0.0.1:10 users", "another build's format"), new(Elsewhere + " users", nowMs + 600_000)]);

        var time = new FakeTimeProvider();
        await using var a = await FleetInstance.StartAsync("a", downstream, redis, time, prefix);
        await a.Logs.WaitAnyAsync(Bounded, "FleetOperationFailed", "FleetRedisUnavailable");
        Assert.Empty(a.Logs.Messages("FleetRedisUnavailable"));

        downstream.RespondWith(503);
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal("503", await a.GetAsync());
        }

        await a.Logs.WaitAsync("FleetVoted", Bounded); // still coordinating: an unavailable instance shares nothing
        Assert.Contains("bogus", Assert.Single(a.Logs.Messages("FleetOperationFailed")), StringComparison.Ordinal);
        Assert.Equal(CircuitState.Open, Assert.Single(a.Registry.GetCircuits(), c => c.Authority == Elsewhere).State);
        var health = await a.Services.GetRequiredService<HealthCheckService>().CheckHealthAsync();
        Assert.Equal(HealthStatus.Healthy, health.Status);
        Assert.Empty(a.Logs.Messages("FleetRedisUnavailable"));
    }

    /// <remarks>
    /// Anything that can publish on the fleet's channel (another app sharing the prefix, another build, any client of that
    /// Redis) is heard. A break of a year, or a negative one, must neither hold the circuit past its own longest break nor
    /// leave it open untold; a message that is not a fleet message at all must leave the coordinator running.
    /// </remarks>
    [SkippableFact]
    public async Task AFleetOpenFromTheChannelWithAnOutOfRangeBreak_OpensTheCircuitForNoLongerThanItsLongestBreak()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var downstream = await KestrelDownstream.StartAsync();
        var prefix = "test-" + Guid.NewGuid().ToString("N")[..8];
        var time = new FakeTimeProvider();
        await using var a = await FleetInstance.StartAsync("a", downstream, redis, time, prefix);
        await using var mux = await ConnectionMultiplexer.ConnectAsync(redis.ConnectionString);
        var channel = RedisChannel.Literal(prefix + ":events");
        var opened = a.WhenState(downstream, CircuitState.Open, CircuitChangeSource.Fleet);

        foreach (var garbage in new[] { "not json", "[1,2]", """{"t":"open","c":"users","a":"http://x:1","b":1e30,"i":"x"}""", """{"t":"open"}""" })
        {
            await mux.GetSubscriber().PublishAsync(channel, garbage);
        }

        var year = (long)TimeSpan.FromDays(365).TotalMilliseconds;
        await mux.GetSubscriber().PublishAsync(channel, $$"""{"t":"open","c":"users","a":"{{downstream.Authority}}","b":{{year}},"i":"intruder"}""");
        await opened.WaitAsync(Bounded);

        var circuit = Assert.Single(a.Registry.GetCircuits(), c => c.Authority == downstream.Authority);
        Assert.Equal(CircuitState.Open, circuit.State);
        Assert.Equal(time.GetUtcNow() + new CircuitBreakerOptions().MaxBreakDuration, circuit.RetryAt);
    }

    /// <remarks>
    /// The coordinator logs from its own catch blocks (Redis unavailable, an operation failed). A logging provider that
    /// throws there must not end the coordination loop, which would leave the instance out of the fleet for good.
    /// </remarks>
    [SkippableFact]
    public async Task ALoggingProviderThatThrows_DoesNotStopTheCoordination()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var downstream = await KestrelDownstream.StartAsync();
        var prefix = "test-" + Guid.NewGuid().ToString("N")[..8];
        await using var a = await FleetInstance.StartAsync(
            "a",
            downstream,
            redis,
            new FakeTimeProvider(),
            prefix,
            otherLogs: new ThrowingLoggerProvider(category => category.StartsWith("CircuitBreaker.Http", StringComparison.Ordinal)));
        downstream.RespondWith(503);

        for (var i = 0; i < 3; i++)
        {
            Assert.Equal("503", await a.GetAsync());
        }

        // Its circuit opened: still coordinating, it votes, and nothing took the provider's fault for Redis going away.
        await a.Logs.WaitAnyAsync(Bounded, "FleetVoted", "FleetRedisUnavailable");
        Assert.Empty(a.Logs.Messages("FleetRedisUnavailable"));
        Assert.Single(a.Logs.Messages("FleetVoted"));
    }

    /// <remarks>
    /// Applying the fleet's open circuits as an instance joins counts each in <c>circuit.fleet.decisions</c>. A listener
    /// of that counter that throws is telemetry failing, not Redis: it must not mark Redis unavailable, which would
    /// release every hold and repeat at every heartbeat, so that the instance never joined the fleet.
    /// </remarks>
    [SkippableFact]
    public async Task AFleetDecisionsListenerThatThrows_DoesNotKeepAnInstanceFromJoiningTheFleet()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var downstream = await KestrelDownstream.StartAsync();
        var prefix = "test-" + Guid.NewGuid().ToString("N")[..8];
        await WriteOpenEntriesAsync(redis, prefix, nowMs => [new(downstream.Authority + " users", nowMs + 600_000)]);

        // Listeners are process-wide: this one throws only for the meters of this test's instance.
        using var listener = new System.Diagnostics.Metrics.MeterListener();
        await using var a = await FleetInstance.StartAsync(
            "a",
            downstream,
            redis,
            new FakeTimeProvider(),
            prefix,
            awaitConnected: false,
            beforeStart: instance =>
            {
                var scope = instance.Services.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>();
                listener.InstrumentPublished = (instrument, l) =>
                {
                    if (instrument.Meter.Scope == scope && instrument.Name == "circuit.fleet.decisions")
                    {
                        l.EnableMeasurementEvents(instrument);
                    }
                };
                listener.SetMeasurementEventCallback<long>((_, _, _, _) => throw new InvalidOperationException("a broken listener"));
                listener.Start();
            });

        // The open circuit is counted as it is applied, after FleetConnected: the fault is reported, not taken for an outage.
        await a.Logs.WaitAnyAsync(Bounded, "FleetTelemetryFailed", "FleetRedisUnavailable");
        Assert.Empty(a.Logs.Messages("FleetRedisUnavailable"));
        Assert.Single(a.Logs.Messages("FleetConnected"));
        Assert.Equal(CircuitState.Open, a.StateOf(downstream)); // the fleet's open circuit applied all the same
        Assert.Equal("CircuitOpenException", await a.GetAsync());
    }

    /// <summary>
    /// a's circuit opens and votes; <paramref name="order"/> then takes it out of Open on a (an operator's reset or
    /// isolation, or an eviction). b alone failing afterwards is one instance, not a quorum of two: a circuit no longer
    /// open on a by a's own evidence must not count for a.
    /// </summary>
    private static async Task AfterAnOperatorOrder_OneMoreFailingInstanceDoesNotMakeTheQuorumAsync(FleetTestBed bed, Func<FleetInstance, CircuitKey, Task> order)
    {
        var (downstream, a, b) = (bed.Downstream, bed.A, bed.B);
        downstream.RespondWith(503);
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal("503", await a.GetAsync());
        }

        await a.Logs.WaitAsync("FleetVoted", Bounded);
        await order(a, new CircuitKey(FleetInstance.ClientName, downstream.Authority));
        await a.Logs.WaitAsync("FleetVoteWithdrawn", Bounded);

        for (var i = 0; i < 3; i++)
        {
            Assert.Equal("503", await b.GetAsync());
        }

        await b.Logs.WaitAsync("FleetVoted", Bounded);
        Assert.Contains("1 of 2", Assert.Single(b.Logs.Messages("FleetVoted")), StringComparison.Ordinal);
        Assert.Empty(b.Logs.Messages("FleetCircuitOpened"));
        Assert.Equal(CircuitState.Closed, bed.C.StateOf(downstream));
    }

    /// <summary>a and b each see FailureThreshold failures and open; the second makes the quorum, and c opens by the fleet's decision.</summary>
    /// <summary>
    /// Writes entries into the fleet's hash of open circuits, as another instance would have. Their values are deadlines
    /// in Redis's own clock, so <paramref name="entries"/> gets Redis's time now, in milliseconds.
    /// </summary>
    private static async Task WriteOpenEntriesAsync(RedisServer redis, string keyPrefix, Func<long, HashEntry[]> entries)
    {
        await using var mux = await ConnectionMultiplexer.ConnectAsync(redis.ConnectionString);
        var db = mux.GetDatabase();
        var time = (RedisResult[])(await db.ExecuteAsync("TIME"))!;
        var nowMs = ((long)time[0] * 1000) + ((long)time[1] / 1000);
        await db.HashSetAsync("{" + keyPrefix + "}:open", entries(nowMs));
    }

    private static async Task OpenByQuorumAsync(KestrelDownstream downstream, FleetInstance a, FleetInstance b, FleetInstance c)
    {
        var cOpens = c.WhenState(downstream, CircuitState.Open, CircuitChangeSource.Fleet);
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal("503", await a.GetAsync());
        }

        await a.Logs.WaitAsync("FleetVoted", Bounded);
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal("503", await b.GetAsync());
        }

        await cOpens.WaitAsync(Bounded);
        await a.Logs.WaitAsync("FleetCircuitOpened", Bounded); // the decision reached a too, which now holds its probe
        Assert.All(new[] { a, b, c }, i => Assert.Equal(CircuitState.Open, i.StateOf(downstream)));
    }

    /// <summary>
    /// Three instances (a, b, c) as in <see cref="FleetTestBed"/>, but each reaching Redis through a relay of its own, so
    /// that a test can cut whichever one won the probe lease off Redis. ProbeWait is two minutes, so that the lease
    /// (which Redis expires in real time) outlives a reconnection, however long StackExchange.Redis takes to retry.
    /// </summary>
    private sealed class RelayedFleet : IAsyncDisposable
    {
        private readonly RedisServer _redis;
        private readonly string _prefix;
        private readonly TcpRelay[] _paths;

        private RelayedFleet(RedisServer redis, KestrelDownstream downstream, FakeTimeProvider time, string prefix, TcpRelay[] paths, FleetInstance[] instances)
        {
            _redis = redis;
            _prefix = prefix;
            _paths = paths;
            Downstream = downstream;
            Time = time;
            Instances = instances;
        }

        public KestrelDownstream Downstream { get; }

        public FakeTimeProvider Time { get; }

        public FleetInstance[] Instances { get; }

        public static async Task<RelayedFleet> StartAsync()
        {
            var redis = await RedisServer.StartAsync();
            var downstream = await KestrelDownstream.StartAsync();
            var time = new FakeTimeProvider();
            var prefix = "test-" + Guid.NewGuid().ToString("N")[..8];
            var paths = new[] { TcpRelay.Start(redis.Port), TcpRelay.Start(redis.Port), TcpRelay.Start(redis.Port) };
            var instances = new FleetInstance[3];
            string[] names = ["a", "b", "c"];
            for (var i = 0; i < 3; i++)
            {
                instances[i] = await FleetInstance.StartAsync(names[i], downstream, redis, time, prefix, fleet: o => o.ProbeWait = TimeSpan.FromMinutes(2), redisPort: paths[i].Port);
            }

            return new RelayedFleet(redis, downstream, time, prefix, paths, instances);
        }

        public TcpRelay PathOf(FleetInstance instance) => _paths[Array.IndexOf(Instances, instance)];

        /// <summary>
        /// Redis keeps the real time, which the fake clock of the instances does not move: its record of the fleet's break
        /// is ended here as it would be by now, a second ago. The probe wait after it still runs.
        /// </summary>
        public async Task EndTheFleetsBreakInRedisAsync()
        {
            await using var mux = await ConnectionMultiplexer.ConnectAsync(_redis.ConnectionString);
            var db = mux.GetDatabase();
            var now = (RedisResult[])(await db.ExecuteAsync("TIME"))!;
            var nowMs = ((long)now[0] * 1000) + ((long)now[1] / 1000);
            await db.HashSetAsync("{" + _prefix + "}:open", Downstream.Authority + " " + FleetInstance.ClientName, nowMs - 1000);
        }

        public async ValueTask DisposeAsync()
        {
            foreach (var instance in Instances)
            {
                await instance.DisposeAsync();
            }

            foreach (var path in _paths)
            {
                await path.DisposeAsync();
            }

            await Downstream.DisposeAsync();
            await _redis.DisposeAsync();
        }
    }
}
