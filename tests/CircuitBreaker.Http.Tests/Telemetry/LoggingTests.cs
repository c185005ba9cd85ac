using System.Net;
using CircuitBreaker.Http.Tests.TestSupport;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using RichardSzalay.MockHttp;

namespace CircuitBreaker.Http.Tests.Telemetry;

/// <summary>The structured log events of the breaker, with their stable ids, levels and values, through <see cref="FakeLogCollector"/>.</summary>
public sealed class LoggingTests
{
    private const string Authority = "http://users.test:80";
    private static readonly Uri Users = new("http://users.test/u/1");

    [Fact]
    public async Task CircuitOpened_IsAWarningWithId1_TheConsecutiveFailuresAndTheLastFailure()
    {
        using var harness = Harness(o => o.FailureThreshold = 3);
        harness.Mock.When("*").Respond(HttpStatusCode.ServiceUnavailable);
        using var client = harness.CreateClient();

        for (var i = 0; i < 3; i++)
        {
            await SendAsync(client);
        }

        var opened = Assert.Single(BreakerLogs.Of(harness.Services));
        Assert.Equal(BreakerLogs.Category, opened.Category);
        Assert.Equal(LogLevel.Warning, opened.Level);
        Assert.Equal(new EventId(1, "CircuitOpened"), opened.Id);
        Assert.Equal(Authority, opened.GetStructuredStateValue("Authority"));
        Assert.Equal("users", opened.GetStructuredStateValue("ClientName"));
        Assert.Equal("3", opened.GetStructuredStateValue("ConsecutiveFailures"));
        Assert.Equal("503", opened.GetStructuredStateValue("LastFailure"));
        Assert.Equal("00:00:30", opened.GetStructuredStateValue("BreakDuration"));
        Assert.Contains("opened after 3 consecutive failures", opened.Message, StringComparison.Ordinal);
        Assert.Contains("last failure 503", opened.Message, StringComparison.Ordinal);
        Assert.Null(opened.Exception);
    }

    [Fact]
    public async Task CircuitOpened_ByTheFailureRatio_CarriesTheRatio()
    {
        using var harness = Harness(o =>
        {
            o.FailureThreshold = 0;
            o.FailureRatio = 0.5;
            o.MinimumThroughput = 4;
        });
        var calls = 0;
        harness.Mock.When("*").Respond(() => Task.FromResult(new HttpResponseMessage(++calls % 2 == 0 ? HttpStatusCode.InternalServerError : HttpStatusCode.OK)));
        using var client = harness.CreateClient();

        for (var i = 0; i < 4; i++)
        {
            await SendAsync(client);
        }

        var opened = Assert.Single(BreakerLogs.Of(harness.Services));
        Assert.Equal(new EventId(1, "CircuitOpened"), opened.Id);
        Assert.Equal("1", opened.GetStructuredStateValue("ConsecutiveFailures"));
        Assert.Equal("0.5", opened.GetStructuredStateValue("FailureRatio"));
        Assert.Equal("500", opened.GetStructuredStateValue("LastFailure"));
    }

    [Fact]
    public async Task Transitions_ThroughAFailedAndASuccessfulProbe_AreLoggedInOrderWithTheirLevels()
    {
        using var harness = Harness(o =>
        {
            o.FailureThreshold = 1;
            o.BreakDurationMultiplier = 2;
        });
        var status = HttpStatusCode.InternalServerError;
        harness.Mock.When("*").Respond(() => Task.FromResult(new HttpResponseMessage(status)));
        using var client = harness.CreateClient();

        await SendAsync(client);                                                        // opened
        await Assert.ThrowsAsync<CircuitOpenException>(() => client.GetAsync(Users));   // rejected
        harness.Time.Advance(TimeSpan.FromSeconds(30));                                 // half-opened
        status = HttpStatusCode.BadGateway;
        await SendAsync(client);                                                        // re-opened
        harness.Time.Advance(TimeSpan.FromSeconds(60));                                 // half-opened
        status = HttpStatusCode.OK;
        await SendAsync(client);                                                        // closed

        var logs = BreakerLogs.Of(harness.Services);
        Assert.Equal(
            [
                (1, "CircuitOpened", LogLevel.Warning),
                (6, "CircuitCallRejected", LogLevel.Debug),
                (3, "CircuitHalfOpened", LogLevel.Information),
                (2, "CircuitReopened", LogLevel.Warning),
                (3, "CircuitHalfOpened", LogLevel.Information),
                (4, "CircuitClosed", LogLevel.Information),
            ],
            logs.Select(r => (r.Id.Id, r.Id.Name, r.Level)));
        Assert.All(logs, r => Assert.Equal(Authority, r.GetStructuredStateValue("Authority")));
        Assert.All(logs, r => Assert.Equal("users", r.GetStructuredStateValue("ClientName")));

        var reopened = logs[3];
        Assert.Equal("502", reopened.GetStructuredStateValue("LastFailure"));
        Assert.Equal("00:01:00", reopened.GetStructuredStateValue("BreakDuration")); // the break grew
        Assert.Contains("the half-open probe failed (502)", reopened.Message, StringComparison.Ordinal);

        Assert.Contains("is half-open: the next call is a probe", logs[2].Message, StringComparison.Ordinal);

        var closed = logs[5];
        Assert.Equal("HalfOpen", closed.GetStructuredStateValue("PreviousState"));
    }

    [Fact]
    public async Task CircuitHalfOpened_IsLoggedWhenTheBreakElapses_BeforeAnyCall()
    {
        using var harness = Harness(o => o.FailureThreshold = 1);
        var calls = harness.Mock.When("*").Respond(HttpStatusCode.InternalServerError);
        using var client = harness.CreateClient();
        await SendAsync(client);

        harness.Time.Advance(TimeSpan.FromSeconds(29));
        Assert.Equal(new EventId(1, "CircuitOpened"), Assert.Single(BreakerLogs.Of(harness.Services)).Id);
        harness.Time.Advance(TimeSpan.FromSeconds(1));

        var logs = BreakerLogs.Of(harness.Services);
        Assert.Equal(2, logs.Count);
        Assert.Equal(new EventId(3, "CircuitHalfOpened"), logs[1].Id);
        Assert.Equal(LogLevel.Information, logs[1].Level);
        Assert.Equal(1, harness.Mock.GetMatchCount(calls)); // no call was made to get there
    }

    [Fact]
    public async Task CircuitIsolated_IsAWarningWithThePreviousState_AndResetLogsClosed()
    {
        using var harness = Harness(o => o.FailureThreshold = 1);
        harness.Mock.When("*").Respond(HttpStatusCode.InternalServerError);
        using var client = harness.CreateClient();
        var users = new CircuitKey("users", Authority);
        var other = new CircuitKey("users", "http://other.test:80");

        harness.Registry.Isolate(other);   // from closed
        await SendAsync(client);           // opened
        harness.Registry.Isolate(users);   // from open
        Assert.True(harness.Registry.Reset(users));

        var logs = BreakerLogs.Of(harness.Services);
        Assert.Equal(
            [(5, "CircuitIsolated"), (1, "CircuitOpened"), (5, "CircuitIsolated"), (4, "CircuitClosed")],
            logs.Select(r => (r.Id.Id, r.Id.Name)));
        Assert.Equal(LogLevel.Warning, logs[0].Level);
        Assert.Equal("http://other.test:80", logs[0].GetStructuredStateValue("Authority"));
        Assert.Equal("Closed", logs[0].GetStructuredStateValue("PreviousState"));
        Assert.Equal("Open", logs[2].GetStructuredStateValue("PreviousState"));
        Assert.Contains("isolated by hand", logs[2].Message, StringComparison.Ordinal);
        Assert.Equal(LogLevel.Information, logs[3].Level);
        Assert.Equal("Isolated", logs[3].GetStructuredStateValue("PreviousState"));
    }

    [Theory]
    [InlineData(false, "none")]
    [InlineData(true, "degraded")]
    public async Task CallRejected_IsDebugWithId6_TheStateAndTheFallback(bool degraded, string fallback)
    {
        using var harness = Harness(o =>
        {
            o.FailureThreshold = 1;
            if (degraded)
            {
                o.Fallback.Degraded.StatusCode = 503;
            }
        });
        harness.Mock.When("*").Respond(HttpStatusCode.InternalServerError);
        using var client = harness.CreateClient();
        await SendAsync(client);

        if (degraded)
        {
            await SendAsync(client);
        }
        else
        {
            await Assert.ThrowsAsync<CircuitOpenException>(() => client.GetAsync(Users));
        }

        var rejected = BreakerLogs.Of(harness.Services)[^1];
        Assert.Equal(LogLevel.Debug, rejected.Level);
        Assert.Equal(new EventId(6, "CircuitCallRejected"), rejected.Id);
        Assert.Equal("Open", rejected.GetStructuredStateValue("State"));
        Assert.Equal(fallback, rejected.GetStructuredStateValue("Fallback"));
        Assert.Contains($"fallback: {fallback}", rejected.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CallRejected_WhileTheProbeIsInFlight_CarriesTheHalfOpenState()
    {
        using var harness = Harness(o => o.FailureThreshold = 1);
        var probe = new TaskCompletionSource<HttpResponseMessage>();
        var calls = 0;
        harness.Mock.When("*").Respond(() => ++calls == 1 ? Task.FromResult(new HttpResponseMessage(HttpStatusCode.InternalServerError)) : probe.Task);
        using var client = harness.CreateClient();
        await SendAsync(client);
        harness.Time.Advance(TimeSpan.FromSeconds(30));

        var probing = client.GetAsync(Users);
        await Assert.ThrowsAsync<CircuitOpenException>(() => client.GetAsync(Users));
        probe.SetResult(new HttpResponseMessage(HttpStatusCode.OK));
        (await probing).Dispose();

        var logs = BreakerLogs.Of(harness.Services);
        var rejected = Assert.Single(logs, r => r.Id.Id == 6);
        Assert.Equal("HalfOpen", rejected.GetStructuredStateValue("State"));
        Assert.Equal(new EventId(4, "CircuitClosed"), logs[^1].Id);
    }

    [Fact]
    public async Task FallbackFailed_OfTheCache_IsAWarningWithId11_NamingTheAuthorityAsEveryOtherEventDoes()
    {
        using var harness = Harness(o =>
        {
            o.FailureThreshold = 1;
            o.Fallback.Cache.Enabled = true;
        });
        harness.Mock.When("*").Respond(HttpStatusCode.InternalServerError);
        using var client = harness.CreateClient();
        await SendAsync(client); // opens
        harness.Services.GetRequiredService<CircuitBreakerRegistry>().GetClient(BreakerHarness.ClientName).Cache!.Dispose(); // every lookup now throws

        await Assert.ThrowsAsync<CircuitOpenException>(() => client.GetAsync(Users));

        var failed = Assert.Single(BreakerLogs.Of(harness.Services), r => r.Id.Id == 11);
        Assert.Equal(new EventId(11, "CircuitFallbackFailed"), failed.Id);
        Assert.Equal(LogLevel.Warning, failed.Level);
        Assert.Equal("cache", failed.GetStructuredStateValue("FallbackKind"));
        Assert.Equal(Authority, failed.GetStructuredStateValue("Authority"));
        Assert.IsType<ObjectDisposedException>(failed.Exception);
    }

    [Fact]
    public async Task SuccessfulCallsThroughAClosedCircuit_LogNothing()
    {
        using var harness = Harness();
        harness.Mock.When("*").Respond(HttpStatusCode.OK);
        using var client = harness.CreateClient();

        for (var i = 0; i < 20; i++)
        {
            await SendAsync(client);
        }

        Assert.Empty(BreakerLogs.Of(harness.Services));
        Assert.NotEmpty(harness.Services.GetFakeLogCollector().GetSnapshot()); // fake logging did collect the HttpClient's own logs
    }

    [Fact]
    public async Task FailuresBelowTheThreshold_LogNothing()
    {
        using var harness = Harness(o => o.FailureThreshold = 5);
        harness.Mock.When("*").Respond(HttpStatusCode.InternalServerError);
        using var client = harness.CreateClient();

        for (var i = 0; i < 4; i++)
        {
            await SendAsync(client);
        }

        Assert.Empty(BreakerLogs.Of(harness.Services));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task CircuitOpenedByFleet_IsAWarningWithId17_InPlaceOfFailureCountsThisInstanceDoesNotHave(bool halfOpenHere)
    {
        using var harness = Harness(o => o.FailureThreshold = 1);
        harness.Mock.When("*").Respond(HttpStatusCode.ServiceUnavailable);
        if (halfOpenHere)
        {
            using var client = harness.CreateClient();
            await SendAsync(client);
            harness.Time.Advance(TimeSpan.FromSeconds(30)); // the break ends: half-open, waiting for the fleet's probe
        }

        var before = BreakerLogs.Of(harness.Services).Count;
        ((ICircuitFleetControl)harness.Registry).Open(new CircuitKey("users", Authority), TimeSpan.FromSeconds(20), TimeSpan.FromSeconds(30));

        var record = Assert.Single(BreakerLogs.Of(harness.Services).Skip(before));
        Assert.Equal("CircuitOpenedByFleet", record.Id.Name);
        Assert.Equal(17, record.Id.Id);
        Assert.Equal(LogLevel.Warning, record.Level);
        Assert.Equal(halfOpenHere ? "HalfOpen" : "Closed", record.GetStructuredStateValue("PreviousState"));
        Assert.Contains("opened by a decision of the fleet", record.Message, StringComparison.Ordinal);
    }

    private static BreakerHarness Harness(Action<CircuitBreakerOptions>? configure = null) =>
        new(configure, BreakerLogs.WithFakeLogging);

    private static async Task SendAsync(HttpClient client) => (await client.GetAsync(Users)).Dispose();
}
