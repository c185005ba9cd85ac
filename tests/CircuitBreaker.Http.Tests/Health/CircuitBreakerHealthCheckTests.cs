using System.Net;
using CircuitBreaker.Http.Tests.TestSupport;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using RichardSzalay.MockHttp;

namespace CircuitBreaker.Http.Tests.Health;

/// <summary>
/// <c>AddHealthChecks().AddCircuitBreakers()</c> through the real <see cref="HealthCheckService"/>, with the
/// circuits driven by a <see cref="Microsoft.Extensions.Time.Testing.FakeTimeProvider"/>: the playbook's alert
/// rules as health states.
/// </summary>
public sealed class CircuitBreakerHealthCheckTests
{
    private const string CheckName = "circuit-breakers";
    private const string KeyA = "http://a.test:80 (client 'users')";
    private const string KeyB = "http://b.test:80 (client 'users')";
    private static readonly Uri HostA = new("http://a.test/x");
    private static readonly Uri HostB = new("http://b.test/x");

    [Fact]
    public async Task NoCircuits_IsHealthy()
    {
        using var harness = Harness();

        var entry = await CheckAsync(harness);

        Assert.Equal(HealthStatus.Healthy, entry.Status);
        Assert.Empty(entry.Data);
        Assert.Equal("All 0 circuits are closed.", entry.Description);
    }

    [Fact]
    public async Task AllCircuitsClosed_IsHealthy()
    {
        using var harness = Harness(o => o.FailureThreshold = 3);
        var status = HttpStatusCode.OK;
        harness.Mock.When("*").Respond(() => Task.FromResult(new HttpResponseMessage(status)));
        using var client = harness.CreateClient();
        await SendAsync(client, HostA);
        status = HttpStatusCode.InternalServerError;
        await SendAsync(client, HostB); // a failure below the threshold: still closed

        var entry = await CheckAsync(harness);

        Assert.Equal(HealthStatus.Healthy, entry.Status);
        Assert.Empty(entry.Data);
        Assert.Equal("All 2 circuits are closed.", entry.Description);
    }

    [Fact]
    public async Task OneCircuitOpen_IsDegraded_AndTheDataListsOnlyIt()
    {
        using var harness = Harness(o => o.FailureThreshold = 1);
        harness.Mock.When("http://a.test/*").Respond(HttpStatusCode.InternalServerError);
        harness.Mock.When("http://b.test/*").Respond(HttpStatusCode.OK);
        using var client = harness.CreateClient();
        await SendAsync(client, HostA);
        await SendAsync(client, HostB);
        harness.Time.Advance(TimeSpan.FromSeconds(10));

        var entry = await CheckAsync(harness);

        Assert.Equal(HealthStatus.Degraded, entry.Status);
        Assert.Equal([KeyA], entry.Data.Keys);
        Assert.Equal("open for 10 s, 0 failed probes", entry.Data[KeyA]);
        Assert.Equal("1 of 2 circuits are not closed; 0 failing.", entry.Description);
    }

    [Fact]
    public async Task BreakElapsedAndNobodyCalled_IsDegradedNotUnhealthy_EvenLongAfter()
    {
        using var harness = Harness(o => o.FailureThreshold = 1);
        harness.Mock.When("*").Respond(HttpStatusCode.InternalServerError);
        using var client = harness.CreateClient();
        await SendAsync(client, HostA);

        harness.Time.Advance(TimeSpan.FromSeconds(30));
        Assert.Equal(HealthStatus.Degraded, (await CheckAsync(harness)).Status);

        harness.Time.Advance(TimeSpan.FromSeconds(31)); // out of Closed for more than 2 x 30 s, waiting for a probe
        var entry = await CheckAsync(harness);
        Assert.Equal(HealthStatus.Degraded, entry.Status);
        Assert.Equal("half_open for 61 s, 0 failed probes", entry.Data[KeyA]);

        harness.Time.Advance(TimeSpan.FromDays(1));
        Assert.Equal(HealthStatus.Degraded, (await CheckAsync(harness)).Status);
    }

    [Fact]
    public async Task AfterAFailedProbe_WaitingForTheNextProbe_IsDegradedNotUnhealthy()
    {
        using var harness = Harness(o => o.FailureThreshold = 1);
        harness.Mock.When("*").Respond(HttpStatusCode.InternalServerError);
        using var client = harness.CreateClient();
        await SendAsync(client, HostA);
        harness.Time.Advance(TimeSpan.FromSeconds(30));
        await SendAsync(client, HostA); // the probe fails: open again until 60 s

        harness.Time.Advance(TimeSpan.FromHours(1)); // nobody called since the break elapsed

        var entry = await CheckAsync(harness);
        Assert.Equal(HealthStatus.Degraded, entry.Status);
        Assert.Equal("half_open for 3630 s, 1 failed probes", entry.Data[KeyA]);
    }

    [Fact]
    public async Task OutOfClosedLongerThanTwiceTheBreak_WithAFailedProbeWhileOpen_IsUnhealthy()
    {
        using var harness = Harness(o =>
        {
            o.FailureThreshold = 1;
            o.BreakDurationMultiplier = 2; // 30 s, then 60 s
        });
        harness.Mock.When("*").Respond(HttpStatusCode.InternalServerError);
        using var client = harness.CreateClient();
        await SendAsync(client, HostA);
        harness.Time.Advance(TimeSpan.FromSeconds(30));
        await SendAsync(client, HostA); // the probe fails: open until 90 s

        harness.Time.Advance(TimeSpan.FromSeconds(30)); // 60 s out of Closed: not yet more than 2 x 30 s
        Assert.Equal(HealthStatus.Degraded, (await CheckAsync(harness)).Status);

        harness.Time.Advance(TimeSpan.FromSeconds(1));
        var entry = await CheckAsync(harness);
        Assert.Equal(HealthStatus.Unhealthy, entry.Status);
        Assert.Equal("open for 61 s, 1 failed probes, failing", entry.Data[KeyA]);
        Assert.Equal("1 of 1 circuits are not closed; 1 failing.", entry.Description);

        harness.Time.Advance(TimeSpan.FromSeconds(29)); // the second break elapsed: waiting for a probe again
        Assert.Equal(HealthStatus.Degraded, (await CheckAsync(harness)).Status);
    }

    [Fact]
    public async Task WallClockStepsForward_AfterAFailedProbe_IsNotFailing_AndReportsTheTimeOutOfClosed()
    {
        var time = new SteppedWallClock();
        using var harness = new BreakerHarness(o => o.FailureThreshold = 1, s => s.AddHealthChecks().AddCircuitBreakers(), time);
        harness.Mock.When("*").Respond(HttpStatusCode.InternalServerError);
        using var client = harness.CreateClient();
        await SendAsync(client, HostA);
        harness.Time.Advance(TimeSpan.FromSeconds(30));
        await SendAsync(client, HostA); // the probe fails: open again
        harness.Time.Advance(TimeSpan.FromSeconds(10));

        time.Step(TimeSpan.FromHours(1)); // 40 s out of Closed, whatever the wall clock says

        var entry = await CheckAsync(harness);
        Assert.Equal(HealthStatus.Degraded, entry.Status);
        Assert.Equal("open for 40 s, 1 failed probes", entry.Data[KeyA]);

        time.Step(TimeSpan.FromHours(-2));
        Assert.Equal("open for 40 s, 1 failed probes", (await CheckAsync(harness)).Data[KeyA]);
    }

    [Fact]
    public async Task OutOfClosedLongerThanTwiceTheBreak_WithoutAFailedProbe_IsDegraded()
    {
        using var harness = Harness(o =>
        {
            o.FailureThreshold = 1;
            o.BreakDurationMultiplier = 4;
        });
        var status = HttpStatusCode.InternalServerError;
        harness.Mock.When("*").Respond(() => Task.FromResult(new HttpResponseMessage(status)));
        using var client = harness.CreateClient();
        await SendAsync(client, HostA);
        harness.Time.Advance(TimeSpan.FromSeconds(30));
        status = HttpStatusCode.OK;
        await SendAsync(client, HostA); // closes
        status = HttpStatusCode.InternalServerError;
        await SendAsync(client, HostA); // fails again at once: re-opened for a grown break of 120 s, no probe failed

        harness.Time.Advance(TimeSpan.FromSeconds(90));

        var entry = await CheckAsync(harness);
        Assert.Equal(HealthStatus.Degraded, entry.Status);
        Assert.Equal("open for 90 s, 0 failed probes", entry.Data[KeyA]);
    }

    [Fact]
    public async Task ThreeFailedProbesInARow_IsUnhealthy_EvenWhileWaitingForTheNextProbe_UntilItCloses()
    {
        using var harness = Harness(o => o.FailureThreshold = 1);
        var status = HttpStatusCode.InternalServerError;
        harness.Mock.When("*").Respond(() => Task.FromResult(new HttpResponseMessage(status)));
        using var client = harness.CreateClient();
        await SendAsync(client, HostA);

        for (var probe = 1; probe <= 2; probe++)
        {
            harness.Time.Advance(TimeSpan.FromSeconds(30));
            await SendAsync(client, HostA);
            Assert.Equal(HealthStatus.Degraded, (await CheckAsync(harness)).Status); // open for 30 or 60 s: not more than 2 x 30 s yet
        }

        harness.Time.Advance(TimeSpan.FromSeconds(30));
        Assert.Equal(HealthStatus.Degraded, (await CheckAsync(harness)).Status); // two failed probes, waiting for the third

        await SendAsync(client, HostA); // the third probe fails
        var entry = await CheckAsync(harness);
        Assert.Equal(HealthStatus.Unhealthy, entry.Status);
        Assert.Equal("open for 90 s, 3 failed probes, failing", entry.Data[KeyA]);

        harness.Time.Advance(TimeSpan.FromSeconds(30)); // waiting for the fourth: still failing
        Assert.Equal(HealthStatus.Unhealthy, (await CheckAsync(harness)).Status);

        status = HttpStatusCode.OK;
        await SendAsync(client, HostA); // the probe closes it

        entry = await CheckAsync(harness);
        Assert.Equal(HealthStatus.Healthy, entry.Status);
        Assert.Empty(entry.Data);
    }

    [Fact]
    public async Task IsolatedCircuit_IsDegraded()
    {
        using var harness = Harness();
        harness.Registry.Isolate(new CircuitKey("users", "http://a.test:80"));
        harness.Time.Advance(TimeSpan.FromMinutes(10));

        var entry = await CheckAsync(harness);

        Assert.Equal(HealthStatus.Degraded, entry.Status);
        Assert.Equal("isolated for 600 s, 0 failed probes", entry.Data[KeyA]);

        harness.Registry.Reset(new CircuitKey("users", "http://a.test:80"));
        Assert.Equal(HealthStatus.Healthy, (await CheckAsync(harness)).Status);
    }

    [Fact]
    public async Task IsolatedByHand_AfterThreeFailedProbes_IsDegraded_AsAnOperatorsDecision()
    {
        using var harness = Harness(o => o.FailureThreshold = 1);
        harness.Mock.When("*").Respond(HttpStatusCode.InternalServerError);
        using var client = harness.CreateClient();
        await OpenAndFailThreeProbesAsync(harness, client, HostA);

        Assert.Equal(HealthStatus.Unhealthy, (await CheckAsync(harness)).Status);

        // The operator takes the host out of rotation: no probe runs while it is isolated, so none can keep failing.
        harness.Registry.Isolate(new CircuitKey("users", "http://a.test:80"));

        var entry = await CheckAsync(harness);
        Assert.Equal(HealthStatus.Degraded, entry.Status);
        Assert.StartsWith("isolated for ", (string)entry.Data[KeyA], StringComparison.Ordinal);
    }

    [Fact]
    public async Task ObserveOnlyCircuit_AfterThreeFailedProbes_IsDegradedNotUnhealthy_AsItTurnsNoCallAway()
    {
        using var harness = Harness(o =>
        {
            o.FailureThreshold = 1;
            o.Enforce = false;
        });
        harness.Mock.When("*").Respond(HttpStatusCode.InternalServerError);
        using var client = harness.CreateClient();
        await OpenAndFailThreeProbesAsync(harness, client, HostA);

        var entry = await CheckAsync(harness);

        // An Unhealthy readiness check would take the instance out of rotation: traffic changed by a mode that must not change it.
        Assert.Equal(HealthStatus.Degraded, entry.Status);
        Assert.Equal("open for 90 s, 3 failed probes, failing, observe-only", entry.Data[KeyA]);
        Assert.Equal("1 of 1 circuits are not closed; 1 failing, 1 of them observe-only.", entry.Description);
    }

    [Fact]
    public async Task ObserveOnlyHostBesideAnEnforcedOne_OnlyTheEnforcedFailingCircuitMakesItUnhealthy()
    {
        using var harness = Harness(o =>
        {
            o.FailureThreshold = 1;
            o.Hosts["a.test"] = new CircuitBreakerHostOptions { Enforce = false };
        });
        harness.Mock.When("*").Respond(HttpStatusCode.InternalServerError);
        using var client = harness.CreateClient();
        await OpenAndFailThreeProbesAsync(harness, client, HostA, HostB);

        var entry = await CheckAsync(harness);

        Assert.Equal(HealthStatus.Unhealthy, entry.Status);
        Assert.EndsWith("failing, observe-only", (string)entry.Data[KeyA], StringComparison.Ordinal);
        Assert.EndsWith("3 failed probes, failing", (string)entry.Data[KeyB], StringComparison.Ordinal);
        Assert.Equal("2 of 2 circuits are not closed; 2 failing, 1 of them observe-only.", entry.Description);
    }

    [Fact]
    public async Task ObserveOnlyCircuit_IsolatedByHand_IsReportedAsIsolated_WithoutTheObserveOnlyMark()
    {
        using var harness = Harness(o => o.Enforce = false);
        harness.Registry.Isolate(new CircuitKey("users", "http://a.test:80"));

        var entry = await CheckAsync(harness);

        // Isolation turns calls away even in observe-only mode, so the mark would mislead.
        Assert.Equal(HealthStatus.Degraded, entry.Status);
        Assert.Equal("isolated for 0 s, 0 failed probes", entry.Data[KeyA]);
    }

    [Fact]
    public async Task AddCircuitBreakers_WithoutAnyAddCircuitBreaker_ReportsHealthyWithNoCircuits_AndOtherChecksStillRun()
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddHealthChecks()
            .AddCheck("self", () => HealthCheckResult.Healthy())
            .AddCircuitBreakers();
        await using var provider = services.BuildServiceProvider();

        var report = await provider.GetRequiredService<HealthCheckService>().CheckHealthAsync(); // must not throw

        Assert.Equal(HealthStatus.Healthy, report.Status);
        Assert.Equal(HealthStatus.Healthy, report.Entries["self"].Status);
        Assert.Equal(HealthStatus.Healthy, report.Entries[CheckName].Status);
        Assert.Empty(report.Entries[CheckName].Data);
    }

    [Fact]
    public async Task Data_ListsExactlyTheCircuitsThatAreNotClosed_OfEveryClient()
    {
        using var harness = Harness(o => o.FailureThreshold = 1);
        harness.Mock.When("http://a.test/*").Respond(HttpStatusCode.InternalServerError);
        harness.Mock.When("*").Respond(HttpStatusCode.OK);
        using var client = harness.CreateClient();
        await SendAsync(client, HostA);                          // open
        await SendAsync(client, HostB);                          // closed
        await SendAsync(client, new Uri("http://c.test/x"));     // closed, then isolated
        harness.Registry.Isolate(new CircuitKey("users", "http://c.test:80"));
        harness.Registry.Isolate(new CircuitKey("orders", "http://b.test:80"));

        var entry = await CheckAsync(harness);

        Assert.Equal(HealthStatus.Degraded, entry.Status);
        Assert.Equal(
            ["http://a.test:80 (client 'users')", "http://b.test:80 (client 'orders')", "http://c.test:80 (client 'users')"],
            entry.Data.Keys.Order(StringComparer.Ordinal));
        Assert.DoesNotContain(KeyB, entry.Data.Keys);
        Assert.Equal("3 of 4 circuits are not closed; 0 failing.", entry.Description);
    }

    [Fact]
    public async Task CustomNameFailureStatusAndTags_AreHonoured()
    {
        using var harness = new BreakerHarness(
            o => o.FailureThreshold = 1,
            s => s.AddHealthChecks().AddCircuitBreakers("breakers", HealthStatus.Degraded, ["ready", "downstream"]));
        harness.Mock.When("*").Respond(HttpStatusCode.InternalServerError);
        using var client = harness.CreateClient();
        await OpenAndFailThreeProbesAsync(harness, client, HostA);

        var health = harness.Services.GetRequiredService<HealthCheckService>();
        var report = await health.CheckHealthAsync(r => r.Tags.Contains("ready"));

        var entry = Assert.Single(report.Entries);
        Assert.Equal("breakers", entry.Key);
        Assert.Equal(HealthStatus.Degraded, entry.Value.Status); // failing, reported with the custom failure status
        Assert.Equal(["downstream", "ready"], entry.Value.Tags.Order(StringComparer.Ordinal));
        Assert.EndsWith("failing", (string)entry.Value.Data[KeyA], StringComparison.Ordinal);
        Assert.Empty((await health.CheckHealthAsync(r => r.Tags.Contains("live"))).Entries);
    }

    private static BreakerHarness Harness(Action<CircuitBreakerOptions>? configure = null) =>
        new(configure, s => s.AddHealthChecks().AddCircuitBreakers());

    private static async Task<HealthReportEntry> CheckAsync(BreakerHarness harness)
    {
        var report = await harness.Services.GetRequiredService<HealthCheckService>().CheckHealthAsync();
        var entry = Assert.Single(report.Entries);
        Assert.Equal(CheckName, entry.Key);
        Assert.Equal(entry.Value.Status, report.Status);
        return entry.Value;
    }

    private static async Task SendAsync(HttpClient client, Uri uri) => (await client.GetAsync(uri)).Dispose();

    /// <summary>Opens the circuit of each host (every call fails), then lets three probes fail, one break of 30 s apart.</summary>
    private static async Task OpenAndFailThreeProbesAsync(BreakerHarness harness, HttpClient client, params Uri[] hosts)
    {
        for (var call = 0; call < 4; call++)
        {
            if (call > 0)
            {
                harness.Time.Advance(TimeSpan.FromSeconds(30));
            }

            foreach (var host in hosts)
            {
                await SendAsync(client, host);
            }
        }
    }
}
