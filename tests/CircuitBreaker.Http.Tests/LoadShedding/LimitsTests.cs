using System.Net;
using System.Net.Http.Headers;
using CircuitBreaker.Http.Tests.Integration;
using CircuitBreaker.Http.Tests.TestSupport;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Microsoft.Extensions.Time.Testing;
using RichardSzalay.MockHttp;

namespace CircuitBreaker.Http.Tests.LoadShedding;

public sealed class LimitsTests
{
    private static readonly Uri Users = new("http://users.test/");

    /// <remarks>
    /// The token bucket is System.Threading.RateLimiting's, which reads the system clock and cannot be driven by a
    /// FakeTimeProvider (dotnet/runtime#106447), so this test waits real time. The bucket refills from its creation
    /// (the first call), so the three calls must fit in one refill period: at 1 call/s, a stall of a second on a
    /// loaded 2-core machine lets the third through. A token every 5 s leaves that much margin, and the wait
    /// afterwards is the limiter's own Retry-After.
    /// </remarks>
    [Fact]
    public async Task Throttle_LetsTheBurstThrough_ThenShedsUntilATokenComes()
    {
        using var harness = new BreakerHarness(o =>
        {
            o.Throttle.PermitsPerSecond = 0.2; // a token every 5 s: the burst is drained well before the next one
            o.Throttle.Burst = 2;
        });
        var calls = harness.Mock.When("*").Respond(HttpStatusCode.OK);
        using var client = harness.CreateClient();

        (await client.GetAsync(Users)).Dispose();
        (await client.GetAsync(Users)).Dispose();
        var shed = await Assert.ThrowsAsync<LoadSheddingException>(() => client.GetAsync(Users));

        Assert.Equal(LoadSheddingReason.Throttle, shed.Reason);
        Assert.InRange(shed.RetryAfter!.Value, TimeSpan.FromMilliseconds(1), TimeSpan.FromSeconds(5));
        Assert.IsAssignableFrom<HttpRequestException>(shed);

        await Task.Delay(shed.RetryAfter.Value + TimeSpan.FromMilliseconds(100));
        (await client.GetAsync(Users)).Dispose();

        Assert.Equal(3, harness.Mock.GetMatchCount(calls));
        Assert.Equal(CircuitState.Closed, harness.Circuit("http://users.test:80").State);
        Assert.Equal(0, harness.Circuit("http://users.test:80").ConsecutiveFailures); // shedding is not the host's failure
    }

    [Fact]
    public async Task Reload_ThatChangesOnlyTheBulkhead_KeepsTheThrottlesBucket()
    {
        // A bucket refilled by every reload that touches another limit would let a burst through each time.
        await using var server = await KestrelDownstream.StartAsync();
        using var settings = new AppSettingsFile("""{ "CircuitBreaker": { "MaxConcurrentRequests": 10, "Throttle": { "PermitsPerSecond": 0.001, "Burst": 1 } } }""");
        using var side = ClientSide.ForClient(settings.Root, server);
        using var client = side.CreateClient();
        (await client.GetAsync("a")).Dispose();

        settings.Rewrite("""{ "CircuitBreaker": { "MaxConcurrentRequests": 20, "Throttle": { "PermitsPerSecond": 0.001, "Burst": 1 } } }""");
        var shed = await Assert.ThrowsAsync<LoadSheddingException>(() => client.GetAsync("b"));

        Assert.Equal(LoadSheddingReason.Throttle, shed.Reason);
        Assert.Equal(1, server.RequestCount);
    }

    [Fact]
    public async Task ShedCall_TakesTheFallbackChain_AndIsCountedWithItsReason()
    {
        using var harness = new BreakerHarness(o =>
        {
            o.Throttle.PermitsPerSecond = 0.1;
            o.Fallback.Degraded.StatusCode = 503;
        });
        using var collector = new MetricCollector<long>(harness.Services.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>(), CircuitBreakerTelemetry.MeterName, "circuit.rejected");
        harness.Mock.When("*").Respond(HttpStatusCode.OK);
        using var client = harness.CreateClient();
        (await client.GetAsync(Users)).Dispose();

        using var response = await client.GetAsync(Users);

        Assert.Equal(["degraded"], response.Headers.GetValues("X-Circuit-Fallback"));
        var rejected = Assert.Single(collector.GetMeasurementSnapshot());
        Assert.Equal("throttle", rejected.Tags["reason"]);
        Assert.Equal("degraded", rejected.Tags["fallback"]);
    }

    [Fact]
    public async Task ShedCall_AnsweredByAFallback_CarriesTheThrottlesNextToken_OrNoRetryAfterOfTheBreakersForTheBulkhead()
    {
        // A shed call has no probe to wait for: the throttle knows when its next token comes, the bulkhead knows nothing.
        using var harness = new BreakerHarness(o =>
        {
            o.Hosts["throttled.test"] = new CircuitBreakerHostOptions { Throttle = { PermitsPerSecond = 0.1 } };
            o.Hosts["bulkhead.test"] = new CircuitBreakerHostOptions { MaxConcurrentRequests = 1 };
            o.Fallback.Degraded.StatusCode = 503;
            o.Fallback.Degraded.Headers["Retry-After"] = "120";
        });
        var held = new TaskCompletionSource<HttpResponseMessage>(TaskCreationOptions.RunContinuationsAsynchronously);
        harness.Mock.When("http://bulkhead.test/*").Respond(() => held.Task);
        harness.Mock.When("*").Respond(HttpStatusCode.OK);
        using var client = harness.CreateClient();
        (await client.GetAsync(new Uri("http://throttled.test/"))).Dispose();
        var running = client.GetAsync(new Uri("http://bulkhead.test/"));

        using var throttled = await client.GetAsync(new Uri("http://throttled.test/"));
        using var bulkheaded = await client.GetAsync(new Uri("http://bulkhead.test/"));
        held.SetResult(new HttpResponseMessage(HttpStatusCode.OK));
        (await running).Dispose();

        Assert.Equal(["degraded"], throttled.Headers.GetValues("X-Circuit-Fallback"));
        Assert.InRange(throttled.Headers.RetryAfter!.Delta!.Value, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(10));
        Assert.Equal(["degraded"], bulkheaded.Headers.GetValues("X-Circuit-Fallback"));
        Assert.Equal(TimeSpan.FromSeconds(120), bulkheaded.Headers.RetryAfter!.Delta); // the configured one
    }

    [Fact]
    public async Task Throttle_ShedsTheHalfOpenProbe_ReportsTheCircuitAsHalfOpen()
    {
        const string host = "throttled-probe.test";
        using var spans = ActivityCollector.ForHost(host);
        var fallbackSaw = new List<(CircuitState, LoadSheddingReason?)>();
        using var harness = new BreakerHarness(o =>
        {
            o.FailureThreshold = 1;
            o.Throttle.PermitsPerSecond = 0.01; // the failure that opens the circuit takes the only token for 100 s
            o.Throttle.Burst = 1;
            o.Fallback.OnOpen = context =>
            {
                fallbackSaw.Add((context.State, context.ShedReason));
                return ValueTask.FromResult<HttpResponseMessage?>(null);
            };
        });
        var calls = harness.Mock.When("*").Respond(HttpStatusCode.InternalServerError);
        using var client = harness.CreateClient();
        var uri = new Uri($"http://{host}/");
        (await client.GetAsync(uri)).Dispose(); // opens
        harness.Time.Advance(TimeSpan.FromSeconds(30)); // the fake clock moves the break, not the token bucket's

        var shed = await Assert.ThrowsAsync<LoadSheddingException>(() => client.GetAsync(uri)); // the probe, shed by the throttle

        Assert.Equal(LoadSheddingReason.Throttle, shed.Reason);
        Assert.Equal(1, harness.Mock.GetMatchCount(calls));
        Assert.Equal(CircuitState.HalfOpen, harness.Circuit($"http://{host}:80").State);
        Assert.Equal([(CircuitState.HalfOpen, LoadSheddingReason.Throttle)], fallbackSaw); // not "probe slots taken"
        var rejection = Assert.Single(spans.Stopped);
        Assert.Equal("throttle", rejection.GetTagItem("circuit.rejected.reason"));
        Assert.Equal("half_open", rejection.GetTagItem("circuit.state"));
    }

    [Fact]
    public async Task RampUp_AfterRecovery_LetsAGrowingShareThrough()
    {
        var recovered = await RecoveredWithRampUpAsync();
        using var harness = recovered.Harness;
        using var client = recovered.Client;

        var atStart = await AdmittedOf(client, 100);
        harness.Time.Advance(TimeSpan.FromSeconds(5));
        var halfway = await AdmittedOf(client, 100);
        harness.Time.Advance(TimeSpan.FromSeconds(5));
        var after = await AdmittedOf(client, 100);

        Assert.Equal(10, atStart);              // a tenth at first
        Assert.InRange(halfway, 54, 56);        // 0.1 + 0.9 x 0.5 = 55 %
        Assert.Equal(100, after);               // everything once the ramp is over
        Assert.Equal(CircuitState.Closed, harness.Circuit("http://users.test:80").State);
    }

    [Fact]
    public async Task RampUp_WallClockStepsBack_StillEndsAfterRampUpDuration()
    {
        var time = new SteppedWallClock();
        var recovered = await RecoveredWithRampUpAsync(time);
        using var harness = recovered.Harness;
        using var client = recovered.Client;

        time.Step(TimeSpan.FromHours(-1));
        harness.Time.Advance(TimeSpan.FromSeconds(10));

        Assert.Equal(100, await AdmittedOf(client, 100));
    }

    [Fact]
    public async Task RampUp_WallClockStepsForward_StillStartsAtATenth()
    {
        var time = new SteppedWallClock();
        var recovered = await RecoveredWithRampUpAsync(time);
        using var harness = recovered.Harness;
        using var client = recovered.Client;

        time.Step(TimeSpan.FromHours(1));

        Assert.Equal(10, await AdmittedOf(client, 100));
    }

    [Fact]
    public async Task RampUp_NotAfterAFirstStartOrAReset()
    {
        using var harness = new BreakerHarness(o =>
        {
            o.FailureThreshold = 1;
            o.RampUpDuration = TimeSpan.FromSeconds(10);
        });
        var status = HttpStatusCode.OK;
        harness.Mock.When("*").Respond(() => Task.FromResult(new HttpResponseMessage(status)));
        using var client = harness.CreateClient();

        Assert.Equal(20, await AdmittedOf(client, 20));
        status = HttpStatusCode.InternalServerError;
        (await client.GetAsync(Users)).Dispose();
        harness.Registry.Reset(new CircuitKey(BreakerHarness.ClientName, "http://users.test:80"));
        status = HttpStatusCode.OK;

        Assert.Equal(20, await AdmittedOf(client, 20));
    }

    [Fact]
    public async Task RampUp_NotAfterAResetOfAHalfOpenCircuit()
    {
        using var harness = new BreakerHarness(o =>
        {
            o.FailureThreshold = 1;
            o.RampUpDuration = TimeSpan.FromSeconds(10);
        });
        var status = HttpStatusCode.InternalServerError;
        harness.Mock.When("*").Respond(() => Task.FromResult(new HttpResponseMessage(status)));
        using var client = harness.CreateClient();
        (await client.GetAsync(Users)).Dispose(); // opens
        harness.Time.Advance(TimeSpan.FromSeconds(30)); // the break timer moves it to half-open
        Assert.Equal(CircuitState.HalfOpen, harness.Circuit("http://users.test:80").State);

        // An operator's reset proves nothing about the downstream, as no probe went: the same as a reset while open.
        Assert.True(harness.Registry.Reset(new CircuitKey(BreakerHarness.ClientName, "http://users.test:80")));
        status = HttpStatusCode.OK;

        Assert.Equal(20, await AdmittedOf(client, 20));
    }

    [Fact]
    public async Task Reset_OfAClosedCircuitStillRampingUp_EndsTheSlowStart()
    {
        var recovered = await RecoveredWithRampUpAsync();
        using var harness = recovered.Harness;
        using var client = recovered.Client;
        Assert.Equal(10, await AdmittedOf(client, 100));

        // A reset is a fresh start, the state a first start has, whatever state the circuit was in when it came.
        harness.Registry.Reset(new CircuitKey(BreakerHarness.ClientName, "http://users.test:80"));

        Assert.Equal(100, await AdmittedOf(client, 100));
    }

    /// <remarks>
    /// The server asked this instance for a 60 s break, longer than the fleet's 10 s: the fleet's prober probes and
    /// succeeds while the circuit here is still Open, so the fleet's verdict closes it without a local probe.
    /// </remarks>
    [Fact]
    public async Task FleetClose_OfACircuitStillOpen_StartsTheRampUp()
    {
        using var harness = new BreakerHarness(
            o =>
            {
                o.FailureThreshold = 1;
                o.RampUpDuration = TimeSpan.FromSeconds(10);
                o.MaxBreakDuration = TimeSpan.FromMinutes(5);
            },
            s => s.AddCircuitBreakerFleetControl());
        var status = HttpStatusCode.ServiceUnavailable;
        harness.Mock.When("*").Respond(() =>
        {
            var response = new HttpResponseMessage(status);
            if (status == HttpStatusCode.ServiceUnavailable)
            {
                response.Headers.RetryAfter = new RetryConditionHeaderValue(TimeSpan.FromSeconds(60));
            }

            return Task.FromResult(response);
        });
        using var client = harness.CreateClient();
        (await client.GetAsync(Users)).Dispose(); // opens for the 60 s the server asked for
        var key = new CircuitKey(BreakerHarness.ClientName, "http://users.test:80");
        var fleet = harness.Services.GetRequiredService<ICircuitFleetControl>();
        fleet.Open(key, TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(30));
        harness.Time.Advance(TimeSpan.FromSeconds(15));
        Assert.Equal(CircuitState.Open, harness.Circuit("http://users.test:80").State);

        Assert.True(fleet.Close(key));
        status = HttpStatusCode.OK;

        Assert.Equal(10, await AdmittedOf(client, 100)); // a tenth at first, as after a recovery of its own
        harness.Time.Advance(TimeSpan.FromSeconds(10));
        Assert.Equal(100, await AdmittedOf(client, 100));
    }

    [Fact]
    public async Task BulkheadQueue_ACallQueuedWhileTheCircuitOpens_IsTurnedAwayInsteadOfSentToTheBrokenHost()
    {
        using var harness = new BreakerHarness(o =>
        {
            o.FailureThreshold = 1;
            o.MaxConcurrentRequests = 1;
            o.MaxQueuedRequests = 1;
        });
        var answer = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var calls = harness.Mock.When("*");
        calls.Respond(async () =>
        {
            await answer.Task;
            return new HttpResponseMessage(HttpStatusCode.ServiceUnavailable);
        });
        using var client = harness.CreateClient();

        var running = client.GetAsync(Users);
        var queued = client.GetAsync(Users); // waits in the bulkhead's queue, let in by a closed circuit
        Assert.False(queued.IsCompleted);
        answer.SetResult(); // the running call's 503 opens the circuit
        (await running).Dispose();

        // Its turn comes while the circuit is open: it must not reach the host the circuit has just given up on.
        var ex = await Assert.ThrowsAsync<CircuitOpenException>(() => queued.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal(CircuitState.Open, ex.State);
        Assert.Equal(1, harness.Mock.GetMatchCount(calls));

        // And it gave its bulkhead slot back: once the circuit is reset, the next call goes.
        harness.Registry.Reset(new CircuitKey(BreakerHarness.ClientName, "http://users.test:80"));
        using var afterwards = await client.GetAsync(Users).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, afterwards.StatusCode);
    }

    [Fact]
    public async Task ObserveOnly_LimitsCountButDoNotShed()
    {
        using var harness = new BreakerHarness(o =>
        {
            o.Enforce = false;
            o.Throttle.PermitsPerSecond = 0.1;
        });
        using var collector = new MetricCollector<long>(harness.Services.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>(), CircuitBreakerTelemetry.MeterName, "circuit.rejected");
        var calls = harness.Mock.When("*").Respond(HttpStatusCode.OK);
        using var client = harness.CreateClient();

        for (var i = 0; i < 5; i++)
        {
            (await client.GetAsync(Users)).Dispose();
        }

        Assert.Equal(5, harness.Mock.GetMatchCount(calls));
        Assert.Equal(4, collector.GetMeasurementSnapshot().Count(m => (string?)m.Tags["reason"] == "throttle" && (bool?)m.Tags["circuit.enforced"] == false));
    }

    [Theory]
    [InlineData("MaxQueuedRequests")]
    [InlineData("Throttle:Burst")]
    [InlineData("RampUpDuration")]
    [InlineData("MaxConcurrentRequests")]
    [InlineData("Throttle:PermitsPerSecond")]
    public void Validate_InvalidLimit_FailsNamingTheKey(string key)
    {
        var options = new CircuitBreakerOptions();
        switch (key)
        {
            case "MaxQueuedRequests": options.MaxQueuedRequests = 5; break; // without MaxConcurrentRequests
            case "Throttle:Burst": options.Throttle.Burst = 5; break; // without a rate
            case "RampUpDuration": options.RampUpDuration = TimeSpan.Zero; break;
            case "MaxConcurrentRequests": options.MaxConcurrentRequests = 0; break;
            default: options.Throttle.PermitsPerSecond = 0; break;
        }

        var result = new CircuitBreakerOptionsValidator().Validate("users", options);

        Assert.True(result.Failed);
        Assert.Contains(key, result.FailureMessage, StringComparison.Ordinal);
    }

    /// <summary>A circuit with a 10 s slow start that its probe has just closed: the ramp-up begins now, and the host answers 200.</summary>
    private static async Task<(BreakerHarness Harness, HttpClient Client)> RecoveredWithRampUpAsync(FakeTimeProvider? time = null)
    {
        var harness = new BreakerHarness(
            o =>
            {
                o.FailureThreshold = 1;
                o.RampUpDuration = TimeSpan.FromSeconds(10);
            },
            time: time);
        var status = HttpStatusCode.InternalServerError;
        harness.Mock.When("*").Respond(() => Task.FromResult(new HttpResponseMessage(status)));
        var client = harness.CreateClient();
        (await client.GetAsync(Users)).Dispose(); // opens
        harness.Time.Advance(TimeSpan.FromSeconds(30));
        status = HttpStatusCode.OK;
        (await client.GetAsync(Users)).Dispose(); // the probe succeeds: recovered
        return (harness, client);
    }

    private static async Task<int> AdmittedOf(HttpClient client, int calls)
    {
        var admitted = 0;
        for (var i = 0; i < calls; i++)
        {
            try
            {
                (await client.GetAsync(Users)).Dispose();
                admitted++;
            }
            catch (LoadSheddingException ex) when (ex.Reason == LoadSheddingReason.RampUp)
            {
            }
        }

        return admitted;
    }
}
