using System.Net;
using CircuitBreaker.Http.Tests.TestSupport;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Http;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using RichardSzalay.MockHttp;

namespace CircuitBreaker.Http.Tests.Registry;

public sealed class CircuitBreakerRegistryTests
{
    private const string Users = "http://users.test:80";

    [Fact]
    public void Registry_IsOneSingletonForBothItsServiceTypes()
    {
        using var harness = new BreakerHarness();

        Assert.Same(harness.Registry, harness.Services.GetRequiredService<ICircuitBreakerRegistry>());
        Assert.Same(harness.Registry, harness.Services.GetRequiredService<CircuitBreakerRegistry>());
    }

    [Fact]
    public async Task GetCircuits_ListsEachCircuitWithItsCounters()
    {
        using var harness = new BreakerHarness(o => o.FailureThreshold = 3);
        harness.Mock.When("http://users.test/*").Respond(HttpStatusCode.InternalServerError);
        harness.Mock.When("http://orders.test/*").Respond(HttpStatusCode.OK);
        using var client = harness.CreateClient();

        (await client.GetAsync(new Uri("http://users.test/a"))).Dispose();
        (await client.GetAsync(new Uri("http://users.test/b"))).Dispose();
        (await client.GetAsync(new Uri("http://orders.test/"))).Dispose();

        var circuits = harness.Registry.GetCircuits().OrderBy(c => c.Authority).ToList();
        Assert.Equal(["http://orders.test:80", Users], circuits.Select(c => c.Authority));
        Assert.All(circuits, c => Assert.Equal(BreakerHarness.ClientName, c.ClientName));
        Assert.Equal(2, circuits[1].ConsecutiveFailures);
        Assert.Null(circuits[1].OpenedAt);
        Assert.Null(circuits[1].RetryAt);
    }

    [Fact]
    public async Task GetCircuits_OpenCircuit_ReportsWhenItOpenedAndWhenItMayBeRetried()
    {
        using var harness = new BreakerHarness(o =>
        {
            o.FailureThreshold = 1;
            o.BreakDuration = TimeSpan.FromSeconds(20);
        });
        harness.Mock.When("*").Respond(HttpStatusCode.InternalServerError);
        using var client = harness.CreateClient();
        var now = harness.Time.GetUtcNow();

        (await client.GetAsync(new Uri("http://users.test/"))).Dispose();

        var circuit = harness.Circuit(Users);
        Assert.Equal(CircuitState.Open, circuit.State);
        Assert.Equal(now, circuit.OpenedAt);
        Assert.Equal(now.AddSeconds(20), circuit.RetryAt);
    }

    [Fact]
    public async Task Isolate_ExistingCircuit_RejectsCallsUntilReset()
    {
        using var harness = new BreakerHarness();
        var calls = harness.Mock.When("*").Respond(HttpStatusCode.OK);
        using var client = harness.CreateClient();
        (await client.GetAsync(new Uri("http://users.test/"))).Dispose();
        var key = new CircuitKey(BreakerHarness.ClientName, Users);

        harness.Registry.Isolate(key);
        var ex = await Assert.ThrowsAsync<CircuitOpenException>(() => client.GetAsync(new Uri("http://users.test/")));
        harness.Time.Advance(TimeSpan.FromDays(1));
        await Assert.ThrowsAsync<CircuitOpenException>(() => client.GetAsync(new Uri("http://users.test/")));

        Assert.Equal(CircuitState.Isolated, ex.State);
        Assert.Null(ex.RetryAfter);
        Assert.Equal(1, harness.Mock.GetMatchCount(calls));

        Assert.True(harness.Registry.Reset(key));
        using var response = await client.GetAsync(new Uri("http://users.test/"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task Isolate_CircuitNotYetUsed_IsCreatedIsolated()
    {
        using var harness = new BreakerHarness();
        harness.Mock.When("*").Respond(HttpStatusCode.OK);
        using var client = harness.CreateClient();

        harness.Registry.Isolate(new CircuitKey(BreakerHarness.ClientName, "http://users.test"));

        Assert.Equal(CircuitState.Isolated, harness.Circuit(Users).State);
        await Assert.ThrowsAsync<CircuitOpenException>(() => client.GetAsync(new Uri("http://users.test/x")));
    }

    [Fact]
    public void Isolate_AuthorityThatIsNotAbsolute_Throws()
    {
        using var harness = new BreakerHarness();

        Assert.Throws<ArgumentException>(() => harness.Registry.Isolate(new CircuitKey(BreakerHarness.ClientName, "users.test")));
    }

    [Fact]
    public void Reset_UnknownCircuit_ReturnsFalse()
    {
        using var harness = new BreakerHarness();

        Assert.False(harness.Registry.Reset(new CircuitKey(BreakerHarness.ClientName, Users)));
    }

    [Fact]
    public async Task Reset_OpenCircuit_ClosesItAndForgetsFailures()
    {
        using var harness = new BreakerHarness(o => o.FailureThreshold = 1);
        harness.Mock.When("*").Respond(HttpStatusCode.InternalServerError);
        using var client = harness.CreateClient();
        (await client.GetAsync(new Uri("http://users.test/"))).Dispose();

        Assert.True(harness.Registry.Reset(new CircuitKey(BreakerHarness.ClientName, Users)));

        Assert.Equal(CircuitState.Closed, harness.Circuit(Users).State);
        Assert.Equal(0, harness.Circuit(Users).ConsecutiveFailures);
    }

    [Fact]
    public async Task StateChanged_ReportsEachTransitionInOrder()
    {
        using var harness = new BreakerHarness(o =>
        {
            o.FailureThreshold = 1;
            o.BreakDuration = TimeSpan.FromSeconds(10);
        });
        var status = HttpStatusCode.InternalServerError;
        harness.Mock.When("*").Respond(() => Task.FromResult(new HttpResponseMessage(status)));
        var changes = new List<CircuitStateChangedEventArgs>();
        harness.Registry.StateChanged += (_, e) => changes.Add(e);
        using var client = harness.CreateClient();

        (await client.GetAsync(new Uri("http://users.test/"))).Dispose();
        harness.Time.Advance(TimeSpan.FromSeconds(10));
        status = HttpStatusCode.OK;
        (await client.GetAsync(new Uri("http://users.test/"))).Dispose();

        Assert.Equal(
            [(CircuitState.Closed, CircuitState.Open), (CircuitState.Open, CircuitState.HalfOpen), (CircuitState.HalfOpen, CircuitState.Closed)],
            changes.Select(c => (c.PreviousState, c.State)));
        Assert.All(changes, c => Assert.Equal(new CircuitKey(BreakerHarness.ClientName, Users), c.Key));
        Assert.Equal(TimeSpan.FromSeconds(10), changes[0].BreakDuration);
        Assert.Equal(harness.Time.GetUtcNow().AddSeconds(-10), changes[0].Timestamp);
    }

    /// <remarks>
    /// The call that opened the circuit is still telling its handlers (a slow first handler here; a preempted thread or a
    /// slow logging provider does the same) when an operator resets the circuit on another thread. A handler that heard
    /// the reset first, then the open, would believe the circuit open for good (the fleet coordinator would vote for it).
    /// </remarks>
    [Fact]
    public async Task StateChanged_TransitionsOfOneCircuitOnTwoThreads_ReachEveryHandlerInTheirOrder()
    {
        using var harness = new BreakerHarness(o => o.FailureThreshold = 1);
        harness.Mock.When("*").Respond(HttpStatusCode.InternalServerError);
        using var opening = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        harness.Registry.StateChanged += (_, e) =>
        {
            if (e.State == CircuitState.Open)
            {
                opening.Set();
                release.Wait(TimeSpan.FromSeconds(10));
            }
        };
        var seen = new System.Collections.Concurrent.ConcurrentQueue<(CircuitState, CircuitState, CircuitChangeSource)>();
        harness.Registry.StateChanged += (_, e) => seen.Enqueue((e.PreviousState, e.State, e.Source));
        using var client = harness.CreateClient();

        var call = Task.Run(async () => (await client.GetAsync(new Uri("http://users.test/"))).Dispose());
        Assert.True(opening.Wait(TimeSpan.FromSeconds(10)));
        Assert.True(harness.Registry.Reset(new CircuitKey(BreakerHarness.ClientName, Users)));
        release.Set();
        await call;

        Assert.Equal(
            [(CircuitState.Closed, CircuitState.Open, CircuitChangeSource.Local), (CircuitState.Open, CircuitState.Closed, CircuitChangeSource.Operator)],
            seen);
        Assert.Equal(CircuitState.Closed, harness.Circuit(Users).State);
    }

    [Fact]
    public async Task StateChanged_HandlerThatThrows_DoesNotFailTheRequestOrOtherHandlers()
    {
        var logs = new FakeLogCollector();
        using var harness = new BreakerHarness(
            o => o.FailureThreshold = 1,
            s => s.AddLogging(b => b.AddProvider(new FakeLoggerProvider(logs))));
        harness.Mock.When("*").Respond(HttpStatusCode.InternalServerError);
        var seen = 0;
        harness.Registry.StateChanged += (_, _) => throw new InvalidOperationException("listener bug");
        harness.Registry.StateChanged += (_, _) => seen++;
        using var client = harness.CreateClient();

        using var response = await client.GetAsync(new Uri("http://users.test/"));

        Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
        Assert.Equal(1, seen);
        var error = Assert.Single(logs.GetSnapshot(), r => r.Id.Name == "CircuitStateChangedHandlerFailed");
        Assert.IsType<InvalidOperationException>(error.Exception);
    }

    [Fact]
    public async Task StateChanged_IsRaisedEvenWhenAMetricsListenerOfTheTransitionThrows()
    {
        // A listener is process-wide and tests run in parallel: it throws only for a host of this test's own.
        const string host = "transition-listener-fault.test";
        using var listener = new System.Diagnostics.Metrics.MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Name == CircuitBreakerTelemetry.MeterName && instrument.Name == "circuit.open")
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        listener.SetMeasurementEventCallback<long>((_, _, tags, _) =>
        {
            foreach (var tag in tags)
            {
                if (tag.Key == "server.address" && Equals(tag.Value, host))
                {
                    throw new InvalidOperationException("a broken listener");
                }
            }
        });
        listener.Start();
        using var harness = new BreakerHarness(o => o.FailureThreshold = 1);
        harness.Mock.When("*").Respond(HttpStatusCode.InternalServerError);
        var changes = new List<CircuitState>();
        harness.Registry.StateChanged += (_, e) => changes.Add(e.State);
        using var client = harness.CreateClient();

        using var response = await client.GetAsync(new Uri($"http://{host}/"));

        // Whoever follows the circuit's state (the fleet coordinator, the app) still hears that it opened, and the
        // caller gets the response the listener's fault would have replaced.
        Assert.Equal([CircuitState.Open], changes);
        Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
    }

    [Fact]
    public async Task StateChanged_IsLoggedWithTheCircuitAndStates()
    {
        var logs = new FakeLogCollector();
        using var harness = new BreakerHarness(
            o => o.FailureThreshold = 1,
            s => s.AddLogging(b => b.AddProvider(new FakeLoggerProvider(logs))));
        harness.Mock.When("*").Respond(HttpStatusCode.InternalServerError);
        using var client = harness.CreateClient();

        (await client.GetAsync(new Uri("http://users.test/"))).Dispose();

        var record = Assert.Single(logs.GetSnapshot(), r => r.Id.Name == "CircuitOpened");
        Assert.Equal(LogLevel.Warning, record.Level);
        Assert.Equal(1, record.Id.Id);
        Assert.Contains(Users, record.Message, StringComparison.Ordinal);
        Assert.Contains("after 1 consecutive failures", record.Message, StringComparison.Ordinal);
        Assert.Contains("last failure 500", record.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task MaxCircuits_EvictsIdleClosedCircuitsBeforeOpenOnes()
    {
        using var harness = new BreakerHarness(o =>
        {
            o.FailureThreshold = 1;
            o.MaxCircuits = 3;
        });
        harness.Mock.When("http://broken.test/*").Respond(HttpStatusCode.InternalServerError);
        harness.Mock.When("*").Respond(HttpStatusCode.OK);
        using var client = harness.CreateClient();

        (await client.GetAsync(new Uri("http://broken.test/"))).Dispose(); // oldest, but open
        harness.Time.Advance(TimeSpan.FromSeconds(5));
        (await client.GetAsync(new Uri("http://a.test/"))).Dispose();
        harness.Time.Advance(TimeSpan.FromSeconds(5));
        (await client.GetAsync(new Uri("http://b.test/"))).Dispose();
        harness.Time.Advance(TimeSpan.FromSeconds(5));
        (await client.GetAsync(new Uri("http://c.test/"))).Dispose();

        var authorities = harness.Registry.GetCircuits().Select(c => c.Authority).Order().ToList();
        Assert.Equal(["http://b.test:80", "http://broken.test:80", "http://c.test:80"], authorities);
    }

    [Fact]
    public async Task MaxCircuits_EvictingCircuitsThatAreNotClosed_IsAWarningNamingThem()
    {
        var (harness, client) = await TwoOpenCircuitsInRoomForTwoAsync();
        using var _ = harness;
        using var __ = client;
        Assert.DoesNotContain(Telemetry.BreakerLogs.Of(harness.Services), r => r.Id.Name == "OpenCircuitsEvicted");

        // Both circuits are open, so the oldest goes though it is open: its host gets a fresh closed circuit.
        (await client.GetAsync(new Uri("http://third.test/"))).Dispose();

        var warning = Assert.Single(Telemetry.BreakerLogs.Of(harness.Services), r => r.Id.Name == "OpenCircuitsEvicted");
        Assert.Equal(LogLevel.Warning, warning.Level);
        Assert.Contains("Evicted 1 circuits of client 'users' that were not closed", warning.Message, StringComparison.Ordinal);
        Assert.Contains("http://broken-1.test:80 (open)", warning.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(harness.Registry.GetCircuits(), c => c.Authority == "http://broken-1.test:80");
    }

    [Fact]
    public async Task MaxCircuits_EvictingAnOpenCircuit_TellsStateChangedItsHostIsClosedAgain_AsAnEviction()
    {
        var (harness, client) = await TwoOpenCircuitsInRoomForTwoAsync();
        using var _ = harness;
        using var __ = client;
        using var meters = new Telemetry.BreakerInstruments(harness.Services);
        var changes = new List<CircuitStateChangedEventArgs>();
        harness.Registry.StateChanged += (_, e) => changes.Add(e);

        // Without it, a listener following the states keeps broken-1 open for good: the evicted circuit never changes again.
        (await client.GetAsync(new Uri("http://third.test/"))).Dispose();

        var evicted = changes[0];
        Assert.Equal(new CircuitKey(BreakerHarness.ClientName, "http://broken-1.test:80"), evicted.Key);
        Assert.Equal((CircuitState.Open, CircuitState.Closed, CircuitChangeSource.Eviction), (evicted.PreviousState, evicted.State, evicted.Source));
        Assert.Equal(harness.Time.GetUtcNow(), evicted.Timestamp);
        Assert.Equal( // then third.test's own failure opens its circuit
            [(CircuitState.Closed, CircuitState.Open, CircuitChangeSource.Local)],
            changes.Skip(1).Select(c => (c.PreviousState, c.State, c.Source)));

        // Logged as the eviction it is (OpenCircuitsEvicted), not as a close, which no probe, operator or fleet decided.
        Assert.DoesNotContain(Telemetry.BreakerLogs.Of(harness.Services), r => r.Id.Name == "CircuitClosed");
        Assert.Empty(meters.Close.GetMeasurementSnapshot());
    }

    [Fact]
    public async Task MaxCircuits_AnEvictedOpenCircuit_ReportsNothingAfterItsEviction_ToACallThatFoundItBefore()
    {
        using var harness = new BreakerHarness(
            o =>
            {
                o.MaxCircuits = 1;
                o.MaxConcurrentRequests = 1;
                o.MaxQueuedRequests = 1;
            },
            s => s.AddCircuitBreakerFleetControl());
        var answer = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        harness.Mock.When("http://users.test/*").Respond(async () =>
        {
            await answer.Task;
            return new HttpResponseMessage(HttpStatusCode.ServiceUnavailable);
        });
        harness.Mock.When("http://other.test/*").Respond(HttpStatusCode.OK);
        var changes = new List<CircuitStateChangedEventArgs>();
        harness.Registry.StateChanged += (_, e) => changes.Add(e);
        using var client = harness.CreateClient();
        var running = client.GetAsync(Users);
        var queued = client.GetAsync(Users); // waits in the bulkhead's queue, holding the users circuit it found
        var fleet = harness.Services.GetRequiredService<ICircuitFleetControl>();
        fleet.Open(new CircuitKey(BreakerHarness.ClientName, Users), TimeSpan.FromSeconds(2), TimeSpan.Zero);
        (await client.GetAsync(new Uri("http://other.test/"))).Dispose(); // evicts the open users circuit
        Assert.Equal(CircuitChangeSource.Eviction, changes[^1].Source);
        changes.Clear();

        // The queued call's turn comes after the break: it asks the circuit it holds again.
        harness.Time.Advance(TimeSpan.FromSeconds(3));
        answer.SetResult();
        (await running).Dispose();
        using var response = await queued.WaitAsync(TimeSpan.FromSeconds(10));

        // The eviction was the last change of that circuit: a listener that heard it must not then hear it go half-open,
        // and keep a circuit no listing shows half-open for good. Its host has a closed circuit: the call went through.
        Assert.Empty(changes);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
    }

    [Fact]
    public void MaxCircuits_ACircuitThatOpensWhileTheEvictionPicksIt_IsAnnouncedClosedAgain()
    {
        // The eviction reads the states in the table's order, which follows the hosts' hashes (randomized per process):
        // a host whose circuit comes before the open one's is read while still closed.
        for (var i = 0; i < 100; i++)
        {
            var time = new HookedTime();
            using var harness = new BreakerHarness(
                o =>
                {
                    o.FailureThreshold = 1;
                    o.MaxCircuits = 2;
                },
                s => s.AddSingleton<TimeProvider>(time));
            var circuits = ((CircuitBreakerRegistry)harness.Registry).GetClient(BreakerHarness.ClientName);
            var failing = circuits.GetOrCreate(new Uri($"http://failing-{i}.test/"));
            var open = circuits.GetOrCreate(new Uri("http://open.test/"));
            if (circuits.Entries.First() != failing)
            {
                continue;
            }

            var openPermit = open.Machine.TryAcquire();
            open.Machine.OnFailure(openPermit);
            var inFlight = failing.Machine.TryAcquire(); // a call still out on the closed circuit the eviction is about to pick
            var changes = new List<CircuitStateChangedEventArgs>();
            harness.Registry.StateChanged += (_, e) => changes.Add(e);

            // Its failure lands while the eviction reads the states (the open circuit's, which asks the clock): after the
            // closed one was read as closed, before it is retired.
            time.OnNextNow = () => failing.Machine.OnFailure(inFlight);
            circuits.GetOrCreate(new Uri("http://third.test/"));

            var told = changes.Where(c => c.Key == failing.Key).Select(c => (c.PreviousState, c.State, c.Source)).ToList();
            Assert.Equal((CircuitState.Closed, CircuitState.Open, CircuitChangeSource.Local), told[0]);
            Assert.DoesNotContain(harness.Registry.GetCircuits(), c => c.Key == failing.Key);

            // A listener that heard it open must hear that its host is closed again, or it keeps it open for good.
            Assert.Equal((CircuitState.Open, CircuitState.Closed, CircuitChangeSource.Eviction), told[^1]);
            return;
        }

        Assert.Fail("No host's circuit came before the open one's.");
    }

    /// <summary>
    /// A client with room for two circuits, both taken by open ones (<c>broken-1.test</c>, then a second later
    /// <c>broken-2.test</c>), whose every host fails at once, and its logs collected.
    /// </summary>
    private static async Task<(BreakerHarness Harness, HttpClient Client)> TwoOpenCircuitsInRoomForTwoAsync()
    {
        var harness = new BreakerHarness(
            o =>
            {
                o.FailureThreshold = 1;
                o.MaxCircuits = 2;
            },
            Telemetry.BreakerLogs.WithFakeLogging);
        harness.Mock.When("*").Respond(HttpStatusCode.InternalServerError);
        var client = harness.CreateClient();
        (await client.GetAsync(new Uri("http://broken-1.test/"))).Dispose();
        harness.Time.Advance(TimeSpan.FromSeconds(1));
        (await client.GetAsync(new Uri("http://broken-2.test/"))).Dispose();
        return (harness, client);
    }

    /// <summary>A client with room for 50 circuits, whose every host fails, and breaks of an hour.</summary>
    private static BreakerHarness HarnessOf50BrokenHosts(int failureThreshold)
    {
        var harness = new BreakerHarness(o =>
        {
            o.FailureThreshold = failureThreshold;
            o.BreakDuration = TimeSpan.FromHours(1);
            o.MaxCircuits = 50;
        });
        harness.Mock.When("*").Respond(HttpStatusCode.InternalServerError);
        return harness;
    }

    /// <summary>Fills the 50 places with the open circuits of <c>broken-0.test</c> to <c>broken-49.test</c>, oldest first.</summary>
    private static async Task OpenEveryCircuitAsync(HttpClient client, int failureThreshold)
    {
        for (var i = 0; i < 50; i++)
        {
            for (var failure = 0; failure < failureThreshold; failure++)
            {
                (await client.GetAsync(new Uri($"http://broken-{i}.test/"))).Dispose();
            }
        }
    }

    private sealed class HookedTime : Microsoft.Extensions.Time.Testing.FakeTimeProvider
    {
        public Action? OnNextNow { get; set; }

        public override DateTimeOffset GetUtcNow()
        {
            var hook = OnNextNow;
            OnNextNow = null;
            hook?.Invoke();
            return base.GetUtcNow();
        }
    }

    [Fact]
    public async Task MaxCircuits_EvictingIdleClosedCircuits_RaisesNoStateChanged()
    {
        using var harness = new BreakerHarness(o => o.MaxCircuits = 2);
        harness.Mock.When("*").Respond(HttpStatusCode.OK);
        var changes = new List<CircuitStateChangedEventArgs>();
        harness.Registry.StateChanged += (_, e) => changes.Add(e);
        using var client = harness.CreateClient();

        foreach (var host in new[] { "a", "b", "c", "d" })
        {
            (await client.GetAsync(new Uri($"http://{host}.test/"))).Dispose();
        }

        Assert.Equal(2, harness.Registry.GetCircuits().Count);
        Assert.Empty(changes); // a closed circuit's host stays closed: nothing changed for a listener
    }

    [Fact]
    public async Task MaxCircuits_WhenEveryCircuitIsOpen_EvictsOnlyTheOneANewHostNeeds()
    {
        // Closed circuits are evicted in batches, to spread the scan's cost; an open one protects its host, so only as
        // many go as the new circuit needs room for.
        using var harness = HarnessOf50BrokenHosts(failureThreshold: 1);
        using var client = harness.CreateClient();
        await OpenEveryCircuitAsync(client, failureThreshold: 1);

        (await client.GetAsync(new Uri("http://new.test/"))).Dispose();

        var broken = harness.Registry.GetCircuits().Where(c => c.Authority.StartsWith("http://broken-", StringComparison.Ordinal)).ToList();
        Assert.Equal(49, broken.Count); // the least recently used, broken-0, made room
        Assert.All(broken, c => Assert.Equal(CircuitState.Open, c.State));
        Assert.DoesNotContain(broken, c => c.Authority == "http://broken-0.test:80");
    }

    [Fact]
    public async Task MaxCircuits_WhenEveryCircuitIsOpen_NewHostsCalledInTurnKeepTheirCircuits()
    {
        // Each new host's circuit was the only closed one when the next new host came, so it went first: two failing
        // hosts called in turn evicted each other's circuit at every call, and neither ever counted enough failures to open.
        using var harness = HarnessOf50BrokenHosts(failureThreshold: 2);
        using var client = harness.CreateClient();
        await OpenEveryCircuitAsync(client, failureThreshold: 2);

        for (var round = 0; round < 2; round++)
        {
            (await client.GetAsync(new Uri("http://new-1.test/"))).Dispose();
            (await client.GetAsync(new Uri("http://new-2.test/"))).Dispose();
        }

        Assert.Equal(CircuitState.Open, harness.Circuit("http://new-1.test:80").State);
        Assert.Equal(CircuitState.Open, harness.Circuit("http://new-2.test:80").State);
        Assert.Equal(50, harness.Registry.GetCircuits().Count);
    }

    [Fact]
    public async Task MaxCircuits_HoldsWhateverNumberOfHostsIsCalled()
    {
        using var harness = new BreakerHarness(o => o.MaxCircuits = 20);
        harness.Mock.When("*").Respond(HttpStatusCode.OK);
        using var client = harness.CreateClient();

        for (var i = 0; i < 500; i++)
        {
            (await client.GetAsync(new Uri($"http://host{i}.test/"))).Dispose();
        }

        Assert.InRange(harness.Registry.GetCircuits().Count, 1, 20);
    }

    [Fact]
    public async Task MaxCircuits_LoweredByAReload_HoldsFromTheNextNewHost()
    {
        using var settings = new Integration.AppSettingsFile("""{ "CircuitBreaker": { "MaxCircuits": 100 } }""");
        using var downstream = new MockHttpMessageHandler();
        downstream.When("*").Respond(HttpStatusCode.OK);
        using var side = Integration.ClientSide.Create(settings.Root, s => s.AddHttpClient("users").AddCircuitBreaker().ConfigurePrimaryHttpMessageHandler(() => downstream));
        using var client = side.CreateClient();
        for (var i = 0; i < 100; i++)
        {
            (await client.GetAsync(new Uri($"http://host{i}.test/"))).Dispose();
        }

        settings.Rewrite("""{ "CircuitBreaker": { "MaxCircuits": 10 } }""");
        (await client.GetAsync(new Uri("http://one-more.test/"))).Dispose();

        Assert.InRange(side.Registry.GetCircuits().Count, 1, 10);
    }

    [Fact]
    public async Task CircuitState_SurvivesHandlerRebuilds()
    {
        using var harness = new BreakerHarness(o => o.FailureThreshold = 1);
        harness.Mock.When("*").Respond(HttpStatusCode.InternalServerError);

        // Build two handler chains for the client the way IHttpClientFactory does when a chain expires.
        using var first = new HttpMessageInvoker(BuildChain(harness.Services));
        using var second = new HttpMessageInvoker(BuildChain(harness.Services));
        using (var request = new HttpRequestMessage(HttpMethod.Get, "http://users.test/"))
        {
            (await first.SendAsync(request, CancellationToken.None)).Dispose();
        }

        using var retry = new HttpRequestMessage(HttpMethod.Get, "http://users.test/");
        await Assert.ThrowsAsync<CircuitOpenException>(() => second.SendAsync(retry, CancellationToken.None));
    }

    [Fact]
    public async Task Dispose_LetsTheResponseCacheGo_OnceItHasBeenLookedUp()
    {
        // Several providers, one after the other: with one only, the test passed against a registry that never disposed
        // its cache (the first cache looked up in a process was collected all the same), while the second and later
        // ones stay alive there.
        var cached = new List<WeakReference<CachedResponse>>();
        for (var i = 0; i < 3; i++)
        {
            cached.Add(await CacheAResponseLookItUpAndDisposeAsync());
        }

        // The await above may have resumed here synchronously, on the stack of the call that stored the response, whose
        // frames below still hold the cache: the collector would see them as live. Resuming on a stack of our own leaves
        // only what the library keeps.
        await Task.Yield();
        for (var i = 0; i < 3; i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }

        // An undisposed MemoryCache that tracks statistics is held by the per-thread statistics of every thread that
        // looked something up in it: each provider built and disposed (a test host's, say) would keep its cached bodies.
        Assert.All(cached, c => Assert.False(c.TryGetTarget(out _), "the cached response outlived the disposed provider"));
    }

    private static async Task<WeakReference<CachedResponse>> CacheAResponseLookItUpAndDisposeAsync()
    {
        using var harness = new BreakerHarness(o => o.Fallback.Cache.Enabled = true);
        harness.Mock.When("http://users.test/*").Respond(HttpStatusCode.OK, "text/plain", "hello");
        using (var client = harness.CreateClient())
        {
            Assert.Equal("hello", await client.GetStringAsync(new Uri("http://users.test/a")));
        }

        // The lookup every call to an open circuit makes.
        var cache = ((CircuitBreakerRegistry)harness.Registry).GetClient(BreakerHarness.ClientName).Cache!;
        using var request = new HttpRequestMessage(HttpMethod.Get, "http://users.test/a");
        var entry = cache.Find(request, TimeSpan.FromMinutes(1), cache.Clock.Now);
        Assert.NotNull(entry);
        return new WeakReference<CachedResponse>(entry);
    }

    private static HttpMessageHandler BuildChain(IServiceProvider services)
    {
        var builder = services.GetRequiredService<HttpMessageHandlerBuilder>();
        builder.Name = BreakerHarness.ClientName;
        var options = services.GetRequiredService<IOptionsMonitor<HttpClientFactoryOptions>>().Get(BreakerHarness.ClientName);
        foreach (var action in options.HttpMessageHandlerBuilderActions)
        {
            action(builder);
        }

        Assert.Single(builder.AdditionalHandlers.OfType<CircuitBreakerHandler>());
        return builder.Build();
    }
}
