using System.Diagnostics.Metrics;
using System.Net;
using CircuitBreaker.Http.Tests.TestSupport;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using RichardSzalay.MockHttp;
using static CircuitBreaker.Http.Tests.Telemetry.BreakerInstruments;

namespace CircuitBreaker.Http.Tests.Telemetry;

/// <summary>
/// Every instrument of the <c>CircuitBreaker.Http</c> meter, observed with <see cref="MetricCollector{T}"/>
/// scoped to the harness's <see cref="IMeterFactory"/>.
/// </summary>
public sealed class MetricsTests
{
    private static readonly Uri Users = new("http://users.test/u/1");
    private static readonly Uri HostA = new("http://a.test/x");
    private static readonly Uri HostB = new("http://b.test:8081/x");

    [Fact]
    public void Instruments_HaveTheDocumentedKindsAndUnits()
    {
        using var harness = new BreakerHarness();
        using var meters = new BreakerInstruments(harness.Services);
        _ = harness.Registry; // the registry creates the meter and its instruments

        Assert.IsType<Counter<long>>(meters.Open.Instrument);
        Assert.IsType<Counter<long>>(meters.HalfOpen.Instrument);
        Assert.IsType<Counter<long>>(meters.Close.Instrument);
        Assert.IsType<Counter<long>>(meters.Failures.Instrument);
        Assert.IsType<Counter<long>>(meters.Rejected.Instrument);
        Assert.IsType<ObservableGauge<int>>(meters.State.Instrument);
        Assert.IsType<ObservableGauge<double>>(meters.OpenDuration.Instrument);
        Assert.Equal("s", meters.OpenDuration.Instrument!.Unit);
        Assert.Equal(CircuitBreakerTelemetry.MeterName, meters.Open.Instrument!.Meter.Name);
        Assert.Equal("CircuitBreaker.Http", CircuitBreakerTelemetry.MeterName);
    }

    [Fact]
    public async Task Collector_CreatedAfterTheRegistry_StillBindsToTheInstruments()
    {
        using var harness = new BreakerHarness(o => o.FailureThreshold = 1);
        harness.Mock.When("*").Respond(HttpStatusCode.InternalServerError);
        using var client = harness.CreateClient(); // resolves the registry, so the meter exists before the collectors

        using var meters = new BreakerInstruments(harness.Services);
        await SendAsync(client, Users);

        Assert.Equal(1, Assert.Single(meters.Open.GetMeasurementSnapshot()).Value);
        Assert.Equal(1, Assert.Single(meters.Failures.GetMeasurementSnapshot()).Value);
    }

    [Fact]
    public async Task FullCycle_WithAFailedProbe_CountsEachTransitionExactlyOnceWithItsTags()
    {
        using var harness = new BreakerHarness(o =>
        {
            o.FailureThreshold = 2;
            o.BreakDuration = TimeSpan.FromSeconds(30);
        });
        using var meters = new BreakerInstruments(harness.Services);
        var status = HttpStatusCode.InternalServerError;
        harness.Mock.When("*").Respond(() => Task.FromResult(new HttpResponseMessage(status)));
        using var client = harness.CreateClient();

        await SendAsync(client, Users);
        await SendAsync(client, Users);                                               // closed -> open
        await Assert.ThrowsAsync<CircuitOpenException>(() => client.GetAsync(Users)); // rejected
        harness.Time.Advance(TimeSpan.FromSeconds(30));                               // open -> half-open
        await SendAsync(client, Users);                                               // failed probe: half-open -> open
        harness.Time.Advance(TimeSpan.FromSeconds(30));                               // open -> half-open
        status = HttpStatusCode.OK;
        await SendAsync(client, Users);                                               // probe succeeds: half-open -> closed

        Assert.Equal(CircuitState.Closed, harness.Circuit("http://users.test:80").State);

        var opened = meters.Open.GetMeasurementSnapshot();
        Assert.Equal(2, opened.Count);
        Assert.All(opened, m => Assert.Equal(1, m.Value));
        opened[0].HasExactTags(CircuitTags("users.test", 80, ("circuit.previous_state", "closed")));
        opened[1].HasExactTags(CircuitTags("users.test", 80, ("circuit.previous_state", "half_open")));

        var halfOpened = meters.HalfOpen.GetMeasurementSnapshot();
        Assert.Equal(2, halfOpened.Count);
        Assert.All(halfOpened, m => Assert.Equal(1, m.Value));
        Assert.All(halfOpened, m => m.HasExactTags(CircuitTags("users.test", 80)));

        var closed = Assert.Single(meters.Close.GetMeasurementSnapshot());
        Assert.Equal(1, closed.Value);
        closed.HasExactTags(CircuitTags("users.test", 80));

        var failures = meters.Failures.GetMeasurementSnapshot();
        Assert.Equal(3, failures.Count); // two that opened it and the failed probe; the rejected call is not one
        Assert.All(failures, m => Assert.Equal(1, m.Value));
        Assert.All(failures, m => m.HasExactTags(CircuitTags("users.test", 80, ("error.type", "500"))));

        var rejected = Assert.Single(meters.Rejected.GetMeasurementSnapshot());
        Assert.Equal(1, rejected.Value);
        rejected.HasExactTags(CircuitTags("users.test", 80, ("fallback", "none"), ("reason", "circuit_open")));
    }

    [Fact]
    public async Task SuccessfulCallsThroughAClosedCircuit_MeasureNothing()
    {
        using var harness = new BreakerHarness();
        using var meters = new BreakerInstruments(harness.Services);
        harness.Mock.When("*").Respond(HttpStatusCode.OK);
        using var client = harness.CreateClient();

        for (var i = 0; i < 20; i++)
        {
            await SendAsync(client, Users);
        }

        Assert.All(meters.Counters, counter => Assert.Empty(counter.GetMeasurementSnapshot()));
        Assert.Equal(new Dictionary<string, int> { ["users.test"] = 0 }, Observe(meters.State));
        Assert.Empty(Observe(meters.OpenDuration));
    }

    [Theory]
    [InlineData(HttpStatusCode.InternalServerError, "500")]
    [InlineData(HttpStatusCode.ServiceUnavailable, "503")]
    public async Task Failures_FailingStatus_AreTaggedWithTheStatusCode(HttpStatusCode status, string errorType)
    {
        using var harness = new BreakerHarness(o => o.FailureThreshold = 10);
        using var meters = new BreakerInstruments(harness.Services);
        harness.Mock.When("*").Respond(status);
        using var client = harness.CreateClient();

        await SendAsync(client, Users);

        var failure = Assert.Single(meters.Failures.GetMeasurementSnapshot());
        Assert.Equal(1, failure.Value);
        failure.HasExactTags(CircuitTags("users.test", 80, ("error.type", errorType)));
        Assert.Empty(meters.Open.GetMeasurementSnapshot());
    }

    [Fact]
    public async Task Failures_ClientErrorThatIsNotAFailure_IsNotCounted()
    {
        using var harness = new BreakerHarness();
        using var meters = new BreakerInstruments(harness.Services);
        harness.Mock.When("*").Respond(HttpStatusCode.NotFound);
        using var client = harness.CreateClient();

        await SendAsync(client, Users);

        Assert.Empty(meters.Failures.GetMeasurementSnapshot());
    }

    [Fact]
    public async Task Failures_AttemptTimeoutElapsedWhilePending_AreTaggedTimeout()
    {
        using var harness = new BreakerHarness(o =>
        {
            o.FailureThreshold = 10;
            o.AttemptTimeout = TimeSpan.FromSeconds(2);
        });
        using var meters = new BreakerInstruments(harness.Services);
        var hang = new TaskCompletionSource();
        harness.Mock.When("*").Respond(async () =>
        {
            await hang.Task;
            return new HttpResponseMessage(HttpStatusCode.OK);
        });
        using var client = harness.CreateClient();

        var call = client.GetAsync(Users);
        Assert.False(call.IsCompleted);
        Assert.Empty(meters.Failures.GetMeasurementSnapshot());
        harness.Time.Advance(TimeSpan.FromSeconds(2));
        hang.SetResult();
        await Assert.ThrowsAsync<TaskCanceledException>(() => call);

        var failure = Assert.Single(meters.Failures.GetMeasurementSnapshot());
        failure.HasExactTags(CircuitTags("users.test", 80, ("error.type", "timeout")));
    }

    [Fact]
    public async Task Failures_CompletedCallSlowerThanSlowCallDuration_AreTaggedSlow()
    {
        using var harness = new BreakerHarness(o =>
        {
            o.FailureThreshold = 10;
            o.SlowCallDuration = TimeSpan.FromSeconds(1);
        });
        using var meters = new BreakerInstruments(harness.Services);
        harness.Mock.When("*").Respond(() =>
        {
            harness.Time.Advance(TimeSpan.FromSeconds(3));
            return Task.FromResult(new HttpResponseMessage(HttpStatusCode.OK));
        });
        using var client = harness.CreateClient();

        using var response = await client.GetAsync(Users);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var failure = Assert.Single(meters.Failures.GetMeasurementSnapshot());
        failure.HasExactTags(CircuitTags("users.test", 80, ("error.type", "slow")));
    }

    [Fact]
    public async Task Failures_HttpRequestException_AreTaggedWithTheExceptionsFullTypeName()
    {
        using var harness = new BreakerHarness(o => o.FailureThreshold = 10);
        using var meters = new BreakerInstruments(harness.Services);
        harness.Mock.When("http://users.test/*").Throw(new HttpRequestException("Connection refused"));
        harness.Mock.When("http://a.test/*").Throw(new DownstreamRefusedException());
        using var client = harness.CreateClient();

        await Assert.ThrowsAsync<HttpRequestException>(() => client.GetAsync(Users));
        await Assert.ThrowsAsync<DownstreamRefusedException>(() => client.GetAsync(HostA));

        var failures = meters.Failures.GetMeasurementSnapshot();
        Assert.Equal(2, failures.Count);
        failures[0].HasExactTags(CircuitTags("users.test", 80, ("error.type", "System.Net.Http.HttpRequestException")));
        failures[1].HasExactTags(CircuitTags("a.test", 80, ("error.type", typeof(DownstreamRefusedException).FullName)));
    }

    [Fact]
    public async Task Failures_CallerCancellationAndFaultsThatAreNotTheHosts_AreNotCounted()
    {
        using var harness = new BreakerHarness(o => o.FailureThreshold = 1);
        using var meters = new BreakerInstruments(harness.Services);
        var never = new TaskCompletionSource<HttpResponseMessage>();
        harness.Mock.When("http://users.test/*").Respond(() => never.Task);
        harness.Mock.When("http://a.test/*").Throw(new InvalidOperationException("a bug below the breaker"));
        using var client = harness.CreateClient();
        using var cancellation = new CancellationTokenSource();

        var call = client.GetAsync(Users, cancellation.Token);
        await cancellation.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => call);
        await Assert.ThrowsAsync<InvalidOperationException>(() => client.GetAsync(HostA));

        Assert.All(meters.Counters, counter => Assert.Empty(counter.GetMeasurementSnapshot()));
    }

    [Theory]
    [InlineData("none")]
    [InlineData("cache")]
    [InlineData("alternate")]
    [InlineData("degraded")]
    [InlineData("custom")]
    public async Task Rejected_IsTaggedWithTheFallbackThatAnswered(string fallback)
    {
        using var harness = new BreakerHarness(o =>
        {
            o.FailureThreshold = 1;
            switch (fallback)
            {
                case "cache":
                    o.Fallback.Cache.Enabled = true;
                    break;
                case "alternate":
                    o.Fallback.AlternateBaseAddress = new Uri("http://backup.test");
                    break;
                case "degraded":
                    o.Fallback.Degraded.StatusCode = 503;
                    break;
                case "custom":
                    o.Fallback.OnOpen = _ => ValueTask.FromResult<HttpResponseMessage?>(new HttpResponseMessage(HttpStatusCode.Accepted));
                    break;
            }
        });
        using var meters = new BreakerInstruments(harness.Services);
        var status = HttpStatusCode.OK;
        harness.Mock.When("http://users.test/*").Respond(() => Task.FromResult(new HttpResponseMessage(status) { Content = new StringContent("alice") }));
        harness.Mock.When("http://backup.test/*").Respond("text/plain", "from backup");
        using var client = harness.CreateClient();
        Assert.Equal("alice", await client.GetStringAsync(Users)); // the last good response, for the cache
        status = HttpStatusCode.InternalServerError;
        await SendAsync(client, Users); // opens

        if (fallback == "none")
        {
            await Assert.ThrowsAsync<CircuitOpenException>(() => client.GetAsync(Users));
        }
        else
        {
            using var response = await client.GetAsync(Users);
            Assert.Equal([fallback], response.Headers.GetValues("X-Circuit-Fallback"));
        }

        var rejected = Assert.Single(meters.Rejected.GetMeasurementSnapshot());
        Assert.Equal(1, rejected.Value);
        rejected.HasExactTags(CircuitTags("users.test", 80, ("fallback", fallback), ("reason", "circuit_open")));
    }

    [Fact]
    public async Task StateGauge_ReportsOneSeriesPerCircuit_ThroughEveryState()
    {
        using var harness = new BreakerHarness(o =>
        {
            o.FailureThreshold = 1;
            o.BreakDuration = TimeSpan.FromSeconds(30);
        });
        using var meters = new BreakerInstruments(harness.Services);
        var statusA = HttpStatusCode.InternalServerError;
        harness.Mock.When("http://a.test/*").Respond(() => Task.FromResult(new HttpResponseMessage(statusA)));
        harness.Mock.When("http://b.test:8081/*").Respond(HttpStatusCode.OK);
        using var client = harness.CreateClient();
        await SendAsync(client, HostA);
        await SendAsync(client, HostB);

        meters.State.RecordObservableInstruments();
        var series = meters.State.GetMeasurementSnapshot();
        Assert.Equal(2, series.Count);
        var a = Assert.Single(series, m => Equals(m.Tags["server.address"], "a.test"));
        var b = Assert.Single(series, m => Equals(m.Tags["server.address"], "b.test"));
        a.HasExactTags(CircuitTags("a.test", 80));
        b.HasExactTags(CircuitTags("b.test", 8081));
        Assert.Equal(1, a.Value);
        Assert.Equal(0, b.Value);

        harness.Time.Advance(TimeSpan.FromSeconds(29));
        Assert.Equal(new Dictionary<string, int> { ["a.test"] = 1, ["b.test"] = 0 }, Observe(meters.State));

        harness.Time.Advance(TimeSpan.FromSeconds(1)); // the break elapsed; nobody called
        Assert.Equal(new Dictionary<string, int> { ["a.test"] = 2, ["b.test"] = 0 }, Observe(meters.State));

        harness.Time.Advance(TimeSpan.FromHours(1)); // still waiting for its probe
        Assert.Equal(new Dictionary<string, int> { ["a.test"] = 2, ["b.test"] = 0 }, Observe(meters.State));

        harness.Registry.Isolate(new CircuitKey(BreakerHarness.ClientName, "http://b.test:8081"));
        Assert.Equal(new Dictionary<string, int> { ["a.test"] = 2, ["b.test"] = 3 }, Observe(meters.State));

        statusA = HttpStatusCode.OK;
        await SendAsync(client, HostA); // the probe closes it
        Assert.True(harness.Registry.Reset(new CircuitKey(BreakerHarness.ClientName, "http://b.test:8081")));
        Assert.Equal(new Dictionary<string, int> { ["a.test"] = 0, ["b.test"] = 0 }, Observe(meters.State));
    }

    [Fact]
    public async Task StateGauge_SameHostThroughTwoClients_IsTwoSeries()
    {
        using var harness = new BreakerHarness(o => o.FailureThreshold = 1);
        using var meters = new BreakerInstruments(harness.Services);
        harness.Mock.When("*").Respond(HttpStatusCode.InternalServerError);
        using var client = harness.CreateClient();
        await SendAsync(client, HostA);
        harness.Registry.Isolate(new CircuitKey("orders", "http://a.test:80"));

        meters.State.RecordObservableInstruments();
        var series = meters.State.GetMeasurementSnapshot();

        Assert.Equal(2, series.Count);
        Assert.Equal(1, Assert.Single(series, m => Equals(m.Tags["http.client.name"], "users")).Value);
        var orders = Assert.Single(series, m => Equals(m.Tags["http.client.name"], "orders"));
        Assert.Equal(3, orders.Value);
        orders.HasExactTags(CircuitTags("a.test", 80, client: "orders"));
    }

    [Fact]
    public async Task OpenDurationGauge_GrowsInSecondsSinceLeavingClosed_AcrossAReopen_AndIsAbsentForClosedCircuits()
    {
        using var harness = new BreakerHarness(o =>
        {
            o.FailureThreshold = 1;
            o.BreakDuration = TimeSpan.FromSeconds(30);
        });
        using var meters = new BreakerInstruments(harness.Services);
        var statusA = HttpStatusCode.InternalServerError;
        harness.Mock.When("http://a.test/*").Respond(() => Task.FromResult(new HttpResponseMessage(statusA)));
        harness.Mock.When("http://b.test:8081/*").Respond(HttpStatusCode.OK);
        using var client = harness.CreateClient();
        await SendAsync(client, HostB);
        Assert.Empty(Observe(meters.OpenDuration));

        await SendAsync(client, HostA); // opens
        meters.OpenDuration.RecordObservableInstruments();
        var first = Assert.Single(meters.OpenDuration.GetMeasurementSnapshot());
        first.HasExactTags(CircuitTags("a.test", 80));
        Assert.Equal(0.0, first.Value);

        harness.Time.Advance(TimeSpan.FromSeconds(10));
        Assert.Equal(new Dictionary<string, double> { ["a.test"] = 10.0 }, Observe(meters.OpenDuration));

        harness.Time.Advance(TimeSpan.FromSeconds(20.5)); // half-open: still out of Closed
        Assert.Equal(new Dictionary<string, double> { ["a.test"] = 30.5 }, Observe(meters.OpenDuration));

        await SendAsync(client, HostA); // the probe fails: re-opened, yet the duration is not reset
        harness.Time.Advance(TimeSpan.FromSeconds(5));
        Assert.Equal(new Dictionary<string, double> { ["a.test"] = 35.5 }, Observe(meters.OpenDuration));

        harness.Registry.Isolate(new CircuitKey(BreakerHarness.ClientName, "http://b.test:8081"));
        harness.Time.Advance(TimeSpan.FromSeconds(25));
        Assert.Equal(new Dictionary<string, double> { ["a.test"] = 60.5, ["b.test"] = 25.0 }, Observe(meters.OpenDuration));

        statusA = HttpStatusCode.OK;
        await SendAsync(client, HostA); // the second probe closes it
        Assert.Equal(new Dictionary<string, double> { ["b.test"] = 25.0 }, Observe(meters.OpenDuration));

        harness.Registry.Reset(new CircuitKey(BreakerHarness.ClientName, "http://b.test:8081"));
        Assert.Empty(Observe(meters.OpenDuration));
    }

    [Fact]
    public async Task OpenDurationGauge_WallClockSteps_MeasuresTheTimeOutOfClosed()
    {
        var time = new SteppedWallClock();
        using var harness = new BreakerHarness(o => o.FailureThreshold = 1, time: time);
        using var meters = new BreakerInstruments(harness.Services);
        harness.Mock.When("*").Respond(HttpStatusCode.InternalServerError);
        using var client = harness.CreateClient();
        await SendAsync(client, HostA); // opens
        harness.Time.Advance(TimeSpan.FromSeconds(10));

        time.Step(TimeSpan.FromHours(-1));
        Assert.Equal(new Dictionary<string, double> { ["a.test"] = 10.0 }, Observe(meters.OpenDuration));

        time.Step(TimeSpan.FromHours(2));
        Assert.Equal(new Dictionary<string, double> { ["a.test"] = 10.0 }, Observe(meters.OpenDuration));
    }

    [Fact]
    public void SynchronousSend_IsMeasuredLikeSendAsync()
    {
        using var harness = new BreakerHarness(o =>
        {
            o.FailureThreshold = 1;
            o.Fallback.Degraded.StatusCode = 503;
        });
        using var meters = new BreakerInstruments(harness.Services);
        harness.Mock.When("*").Respond(HttpStatusCode.InternalServerError);
        using var client = harness.CreateClient();

        using (var first = new HttpRequestMessage(HttpMethod.Get, Users))
        using (var failed = client.Send(first))
        {
            Assert.Equal(HttpStatusCode.InternalServerError, failed.StatusCode);
        }

        using (var second = new HttpRequestMessage(HttpMethod.Get, Users))
        using (var degraded = client.Send(second))
        {
            Assert.Equal(["degraded"], degraded.Headers.GetValues("X-Circuit-Fallback"));
        }

        Assert.Single(meters.Failures.GetMeasurementSnapshot()).HasExactTags(CircuitTags("users.test", 80, ("error.type", "500")));
        Assert.Single(meters.Open.GetMeasurementSnapshot()).HasExactTags(CircuitTags("users.test", 80, ("circuit.previous_state", "closed")));
        Assert.Single(meters.Rejected.GetMeasurementSnapshot()).HasExactTags(CircuitTags("users.test", 80, ("fallback", "degraded"), ("reason", "circuit_open")));
    }

    [Fact]
    public async Task IsolateAndReset_CountNoOpenButOneClose()
    {
        using var harness = new BreakerHarness();
        using var meters = new BreakerInstruments(harness.Services);
        var key = new CircuitKey(BreakerHarness.ClientName, "http://users.test:80");

        harness.Registry.Isolate(key);
        using var client = harness.CreateClient();
        await Assert.ThrowsAsync<CircuitOpenException>(() => client.GetAsync(Users));

        Assert.Empty(meters.Open.GetMeasurementSnapshot());
        Assert.Empty(meters.HalfOpen.GetMeasurementSnapshot());
        var rejected = Assert.Single(meters.Rejected.GetMeasurementSnapshot());
        rejected.HasExactTags(CircuitTags("users.test", 80, ("fallback", "none"), ("reason", "circuit_open")));

        Assert.True(harness.Registry.Reset(key));

        var closed = Assert.Single(meters.Close.GetMeasurementSnapshot());
        closed.HasExactTags(CircuitTags("users.test", 80));
    }

    private static async Task SendAsync(HttpClient client, Uri uri) => (await client.GetAsync(uri)).Dispose();
}

/// <summary>A failure of the downstream host of a type of its own, to see its full name in <c>error.type</c>.</summary>
public sealed class DownstreamRefusedException : HttpRequestException
{
    public DownstreamRefusedException()
        : base("refused by the test")
    {
    }

    public DownstreamRefusedException(string message)
        : base(message)
    {
    }

    public DownstreamRefusedException(string message, Exception inner)
        : base(message, inner)
    {
    }
}
