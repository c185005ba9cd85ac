using System.Net;
using CircuitBreaker.Http.Tests.TestSupport;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using RichardSzalay.MockHttp;
using static CircuitBreaker.Http.Tests.Telemetry.BreakerInstruments;

namespace CircuitBreaker.Http.Tests.Telemetry;

/// <summary>
/// <c>Enforce: false</c>: the circuit moves, reports and logs exactly as an enforcing one would, and never
/// turns a call away.
/// </summary>
public sealed class ObserveOnlyTests
{
    private const string Authority = "http://users.test:80";
    private static readonly Uri Users = new("http://users.test/u/1");

    [Fact]
    public async Task ObserveOnly_AfterTheThreshold_OpensButEveryCallStillReachesTheHost()
    {
        using var harness = new BreakerHarness(
            o =>
            {
                o.Enforce = false;
                o.FailureThreshold = 2;
                o.Fallback.Degraded.StatusCode = 503; // would answer if the circuit enforced
            },
            BreakerLogs.WithFakeLogging);
        using var meters = new BreakerInstruments(harness.Services);
        var requests = harness.Mock.When("*").Respond(HttpStatusCode.InternalServerError, "text/plain", "from the host");
        using var client = harness.CreateClient();

        for (var i = 1; i <= 5; i++)
        {
            using var response = await client.GetAsync(Users); // no CircuitOpenException, ever
            Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
            Assert.Equal("from the host", await response.Content.ReadAsStringAsync());
            Assert.False(response.Headers.Contains("X-Circuit-Fallback"));
            Assert.Equal(i, harness.Mock.GetMatchCount(requests));
        }

        var circuit = harness.Circuit(Authority);
        Assert.Equal(CircuitState.Open, circuit.State);
        Assert.Equal(harness.Time.GetUtcNow().AddSeconds(30), circuit.RetryAt); // the calls sent while open did not move it

        var opened = Assert.Single(meters.Open.GetMeasurementSnapshot());
        opened.HasExactTags(CircuitTags("users.test", 80, ("circuit.previous_state", "closed")));
        var rejected = meters.Rejected.GetMeasurementSnapshot();
        Assert.Equal(3, rejected.Count);
        Assert.All(rejected, m => m.HasExactTags(CircuitTags("users.test", 80, ("fallback", "none"), ("reason", "circuit_open"), ("circuit.enforced", false))));
        Assert.Equal(new Dictionary<string, int> { ["users.test"] = 1 }, Observe(meters.State));

        var logs = BreakerLogs.Of(harness.Services);
        Assert.Equal([1, 7, 7, 7], logs.Select(r => r.Id.Id));
        Assert.Equal(new EventId(1, "CircuitOpened"), logs[0].Id);
        Assert.All(logs.Skip(1), r =>
        {
            Assert.Equal(new EventId(7, "CircuitCallObserved"), r.Id);
            Assert.Equal(LogLevel.Debug, r.Level);
            Assert.Equal("Open", r.GetStructuredStateValue("State"));
            Assert.Equal(Authority, r.GetStructuredStateValue("Authority"));
            Assert.Equal(BreakerHarness.ClientName, r.GetStructuredStateValue("ClientName"));
        });
        Assert.DoesNotContain(logs, r => r.Id.Id == 6); // nothing was rejected
    }

    [Fact]
    public async Task ObserveOnly_HalfOpensAndClosesAsAnEnforcingCircuitWould()
    {
        using var harness = new BreakerHarness(
            o =>
            {
                o.Enforce = false;
                o.FailureThreshold = 1;
            },
            BreakerLogs.WithFakeLogging);
        using var meters = new BreakerInstruments(harness.Services);
        var status = HttpStatusCode.InternalServerError;
        var requests = harness.Mock.When("*");
        requests.Respond(() => Task.FromResult(new HttpResponseMessage(status)));
        using var client = harness.CreateClient();
        await SendAsync(client);                          // opens
        harness.Time.Advance(TimeSpan.FromSeconds(30));   // half-opens
        Assert.Equal(CircuitState.HalfOpen, harness.Circuit(Authority).State);

        await SendAsync(client);                          // the probe fails: re-opened
        Assert.Equal(CircuitState.Open, harness.Circuit(Authority).State);
        await SendAsync(client);                          // sent anyway
        harness.Time.Advance(TimeSpan.FromSeconds(30));
        status = HttpStatusCode.OK;
        await SendAsync(client);                          // the probe succeeds: closed

        Assert.Equal(CircuitState.Closed, harness.Circuit(Authority).State);
        Assert.Equal(4, harness.Mock.GetMatchCount(requests));
        var opened = meters.Open.GetMeasurementSnapshot();
        Assert.Equal(["closed", "half_open"], opened.Select(m => (string)m.Tags["circuit.previous_state"]!));
        Assert.Equal(2, meters.HalfOpen.GetMeasurementSnapshot().Count);
        Assert.Single(meters.Close.GetMeasurementSnapshot());
        var rejected = Assert.Single(meters.Rejected.GetMeasurementSnapshot());
        Assert.Equal(false, rejected.Tags["circuit.enforced"]);
        Assert.Equal(
            ["CircuitOpened", "CircuitHalfOpened", "CircuitReopened", "CircuitCallObserved", "CircuitHalfOpened", "CircuitClosed"],
            BreakerLogs.Of(harness.Services).Select(r => r.Id.Name));
    }

    [Fact]
    public async Task ObserveOnly_CallsWhileTheProbeIsInFlight_AreSentAndCountedAsNotEnforced()
    {
        using var harness = new BreakerHarness(o =>
        {
            o.Enforce = false;
            o.FailureThreshold = 1;
        });
        using var meters = new BreakerInstruments(harness.Services);
        var probe = new TaskCompletionSource<HttpResponseMessage>();
        var probeArrived = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var calls = 0;
        harness.Mock.When("*").Respond(() =>
        {
            switch (Interlocked.Increment(ref calls))
            {
                case 1:
                    return Task.FromResult(new HttpResponseMessage(HttpStatusCode.InternalServerError));
                case 2:
                    probeArrived.SetResult();
                    return probe.Task;
                default:
                    return Task.FromResult(new HttpResponseMessage(HttpStatusCode.OK));
            }
        });
        using var client = harness.CreateClient();
        await SendAsync(client);
        harness.Time.Advance(TimeSpan.FromSeconds(30));

        var probing = client.GetAsync(Users);
        await probeArrived.Task.WaitAsync(TimeSpan.FromSeconds(10)); // the probe holds the slot before the next call starts
        using (var alongside = await client.GetAsync(Users))
        {
            Assert.Equal(HttpStatusCode.OK, alongside.StatusCode);
        }

        Assert.Equal(CircuitState.HalfOpen, harness.Circuit(Authority).State); // its success was no probe
        probe.SetResult(new HttpResponseMessage(HttpStatusCode.OK));
        (await probing).Dispose();

        Assert.Equal(CircuitState.Closed, harness.Circuit(Authority).State);
        Assert.Equal(3, calls);
        var rejected = Assert.Single(meters.Rejected.GetMeasurementSnapshot());
        rejected.HasExactTags(CircuitTags("users.test", 80, ("fallback", "none"), ("reason", "circuit_open"), ("circuit.enforced", false)));
    }

    [Fact]
    public async Task HostOverride_EnforceFalse_MakesThatHostObserveOnly_AndNoOther()
    {
        using var harness = new BreakerHarness(o =>
        {
            o.FailureThreshold = 1;
            o.Hosts["shadow.test"] = new CircuitBreakerHostOptions { Enforce = false };
        });
        using var meters = new BreakerInstruments(harness.Services);
        var shadow = harness.Mock.When("http://shadow.test/*").Respond(HttpStatusCode.InternalServerError);
        var strict = harness.Mock.When("http://strict.test/*").Respond(HttpStatusCode.InternalServerError);
        using var client = harness.CreateClient();
        var shadowUri = new Uri("http://shadow.test/x");
        var strictUri = new Uri("http://strict.test/x");
        await SendAsync(client, shadowUri);
        await SendAsync(client, strictUri);

        await SendAsync(client, shadowUri);
        await Assert.ThrowsAsync<CircuitOpenException>(() => client.GetAsync(strictUri));

        Assert.Equal(CircuitState.Open, harness.Circuit("http://shadow.test:80").State);
        Assert.Equal(CircuitState.Open, harness.Circuit("http://strict.test:80").State);
        Assert.Equal(2, harness.Mock.GetMatchCount(shadow));
        Assert.Equal(1, harness.Mock.GetMatchCount(strict));
        var rejected = meters.Rejected.GetMeasurementSnapshot();
        Assert.Equal(2, rejected.Count);
        Assert.Single(rejected, m => m.MatchesTags(CircuitTags("shadow.test", 80, ("fallback", "none"), ("reason", "circuit_open"), ("circuit.enforced", false)).ToArray()));
        Assert.Single(rejected, m => m.MatchesTags(CircuitTags("strict.test", 80, ("fallback", "none"), ("reason", "circuit_open")).ToArray()));
    }

    [Fact]
    public async Task HostOverride_EnforceTrue_UnderAnObserveOnlyClient_FromJson()
    {
        var configuration = JsonConfig("""
            {
              "CircuitBreaker": {
                "Enforce": false,
                "FailureThreshold": 1,
                "Hosts": { "strict.test": { "Enforce": true } }
              }
            }
            """);
        var time = new FakeTimeProvider();
        using var mock = new MockHttpMessageHandler();
        var services = new ServiceCollection();
        services.AddSingleton<TimeProvider>(time);
        services.AddHttpClient("users").AddCircuitBreaker(configuration.GetSection("CircuitBreaker")).ConfigurePrimaryHttpMessageHandler(() => mock);
        using var provider = services.BuildServiceProvider();
        var shadow = mock.When("http://shadow.test/*").Respond(HttpStatusCode.InternalServerError);
        var strict = mock.When("http://strict.test/*").Respond(HttpStatusCode.InternalServerError);
        using var client = provider.GetRequiredService<IHttpClientFactory>().CreateClient("users");
        var shadowUri = new Uri("http://shadow.test/x");
        var strictUri = new Uri("http://strict.test/x");

        for (var i = 0; i < 3; i++)
        {
            await SendAsync(client, shadowUri);
        }

        await SendAsync(client, strictUri);
        await Assert.ThrowsAsync<CircuitOpenException>(() => client.GetAsync(strictUri));

        Assert.Equal(3, mock.GetMatchCount(shadow));
        Assert.Equal(1, mock.GetMatchCount(strict));
        var circuits = provider.GetRequiredService<ICircuitBreakerRegistry>().GetCircuits();
        Assert.All(circuits, c => Assert.Equal(CircuitState.Open, c.State));
    }

    private static IConfigurationRoot JsonConfig(string json)
    {
        using var stream = new MemoryStream(System.Text.Encoding.UTF8.GetBytes(json));
        return new ConfigurationBuilder().AddJsonStream(stream).Build();
    }

    private static Task SendAsync(HttpClient client) => SendAsync(client, Users);

    private static async Task SendAsync(HttpClient client, Uri uri) => (await client.GetAsync(uri)).Dispose();
}
