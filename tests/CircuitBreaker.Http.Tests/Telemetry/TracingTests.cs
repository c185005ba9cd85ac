using System.Diagnostics;
using System.Net;
using CircuitBreaker.Http.Tests.TestSupport;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using RichardSzalay.MockHttp;

namespace CircuitBreaker.Http.Tests.Telemetry;

/// <summary>
/// The spans of the <c>CircuitBreaker.Http</c> source. Listeners are process-wide and test classes run in
/// parallel, so each test calls a host name of its own and keeps only the spans tagged with it.
/// </summary>
public sealed class TracingTests
{
    private const string CallerSourceName = "CircuitBreaker.Http.Tests.Caller";

    [Fact]
    public async Task Rejection_WithoutFallback_IsAnErrorSpanWithTheCircuitTags()
    {
        const string host = "trace-rejected-none.test";
        using var spans = ActivityCollector.ForHost(host);
        using var harness = new BreakerHarness(o => o.FailureThreshold = 1);
        harness.Mock.When("*").Respond(HttpStatusCode.InternalServerError);
        using var client = harness.CreateClient();
        await SendAsync(client, host);
        Assert.Empty(spans.Stopped); // the failure that opened the circuit went through a closed circuit: no span

        await Assert.ThrowsAsync<CircuitOpenException>(() => client.GetAsync(Uri(host)));

        var rejection = Assert.Single(spans.Stopped);
        Assert.Equal("circuit_breaker.rejected", rejection.OperationName);
        Assert.Equal(CircuitBreakerTelemetry.ActivitySourceName, rejection.Source.Name);
        Assert.Equal(ActivityKind.Internal, rejection.Kind);
        Assert.Equal("users", rejection.GetTagItem("http.client.name"));
        Assert.Equal(host, rejection.GetTagItem("server.address"));
        Assert.Equal(80, rejection.GetTagItem("server.port"));
        Assert.Equal("open", rejection.GetTagItem("circuit.state"));
        Assert.Equal("none", rejection.GetTagItem("circuit.fallback"));
        Assert.Equal(ActivityStatusCode.Error, rejection.Status);
        Assert.Equal("circuit open", rejection.StatusDescription);
    }

    [Theory]
    [InlineData("degraded")]
    [InlineData("custom")]
    [InlineData("cache")]
    public async Task Rejection_AnsweredByAFallback_NamesItAndIsNoError(string fallback)
    {
        var host = $"trace-rejected-{fallback}.test";
        using var spans = ActivityCollector.ForHost(host);
        using var harness = new BreakerHarness(o =>
        {
            o.FailureThreshold = 1;
            o.Fallback.Cache.Enabled = fallback == "cache";
            o.Fallback.Degraded.StatusCode = fallback == "degraded" ? 503 : null;
            o.Fallback.OnOpen = fallback == "custom" ? _ => ValueTask.FromResult<HttpResponseMessage?>(new HttpResponseMessage(HttpStatusCode.Accepted)) : null;
        });
        var status = HttpStatusCode.OK;
        harness.Mock.When("*").Respond(() => Task.FromResult(new HttpResponseMessage(status) { Content = new StringContent("alice") }));
        using var client = harness.CreateClient();
        Assert.Equal("alice", await client.GetStringAsync(Uri(host)));
        status = HttpStatusCode.InternalServerError;
        await SendAsync(client, host);

        using var response = await client.GetAsync(Uri(host));

        Assert.Equal([fallback], response.Headers.GetValues("X-Circuit-Fallback"));
        var rejection = Assert.Single(spans.Stopped);
        Assert.Equal("circuit_breaker.rejected", rejection.OperationName);
        Assert.Equal(fallback, rejection.GetTagItem("circuit.fallback"));
        Assert.Equal("open", rejection.GetTagItem("circuit.state"));
        Assert.Equal(ActivityStatusCode.Unset, rejection.Status);
    }

    [Fact]
    public async Task Rejection_IsAChildOfTheCallersActivity_AndTheCustomFallbackRunsInsideIt()
    {
        const string host = "trace-rejected-child.test";
        using var spans = new ActivityCollector(
            a => a.Source.Name == CallerSourceName || Equals(a.GetTagItem("server.address"), host),
            CallerSourceName);
        using var caller = new ActivitySource(CallerSourceName);
        Activity? currentInFallback = null;
        using var harness = new BreakerHarness(o =>
        {
            o.FailureThreshold = 1;
            o.Fallback.OnOpen = _ =>
            {
                currentInFallback = Activity.Current;
                return ValueTask.FromResult<HttpResponseMessage?>(new HttpResponseMessage(HttpStatusCode.Accepted));
            };
        });
        harness.Mock.When("*").Respond(HttpStatusCode.InternalServerError);
        using var client = harness.CreateClient();
        await SendAsync(client, host);

        Activity? request;
        using (request = caller.StartActivity("GET /profile"))
        {
            Assert.NotNull(request);
            await SendAsync(client, host);
        }

        var rejection = Assert.Single(spans.Stopped, a => a.OperationName == "circuit_breaker.rejected");
        Assert.Equal(request.TraceId, rejection.TraceId);
        Assert.Equal(request.SpanId, rejection.ParentSpanId);
        Assert.Same(rejection, currentInFallback);
        Assert.Equal("custom", rejection.GetTagItem("circuit.fallback"));
    }

    [Fact]
    public async Task Rejection_WhileTheProbeIsInFlight_CarriesTheHalfOpenState()
    {
        const string host = "trace-rejected-half-open.test";
        using var spans = ActivityCollector.ForHost(host);
        using var harness = new BreakerHarness(o => o.FailureThreshold = 1);
        var probe = new TaskCompletionSource<HttpResponseMessage>();
        var calls = 0;
        harness.Mock.When("*").Respond(() => ++calls == 1 ? Task.FromResult(new HttpResponseMessage(HttpStatusCode.InternalServerError)) : probe.Task);
        using var client = harness.CreateClient();
        await SendAsync(client, host);
        harness.Time.Advance(TimeSpan.FromSeconds(30));

        var probing = client.GetAsync(Uri(host));
        await Assert.ThrowsAsync<CircuitOpenException>(() => client.GetAsync(Uri(host)));
        probe.SetResult(new HttpResponseMessage(HttpStatusCode.OK));
        (await probing).Dispose();

        var rejection = Assert.Single(spans.Stopped, a => a.OperationName == "circuit_breaker.rejected");
        Assert.Equal("half_open", rejection.GetTagItem("circuit.state"));
        Assert.Equal("none", rejection.GetTagItem("circuit.fallback"));
        Assert.Single(spans.Stopped, a => a.OperationName == "circuit_breaker.probe");
    }

    [Fact]
    public async Task Rejection_ByAnIsolatedCircuit_CarriesTheIsolatedState()
    {
        const string host = "trace-rejected-isolated.test";
        using var spans = ActivityCollector.ForHost(host);
        using var harness = new BreakerHarness();
        harness.Mock.When("*").Respond(HttpStatusCode.OK);
        using var client = harness.CreateClient();
        harness.Registry.Isolate(new CircuitKey("users", $"http://{host}:80"));

        await Assert.ThrowsAsync<CircuitOpenException>(() => client.GetAsync(Uri(host)));

        var rejection = Assert.Single(spans.Stopped);
        Assert.Equal("isolated", rejection.GetTagItem("circuit.state"));
    }

    [Fact]
    public async Task Probe_ThatSucceeds_IsASpanWithResultSuccess_AndTheDownstreamCallRunsInsideIt()
    {
        const string host = "trace-probe-success.test";
        using var spans = new ActivityCollector(
            a => a.Source.Name == CallerSourceName || Equals(a.GetTagItem("server.address"), host),
            CallerSourceName);
        using var caller = new ActivitySource(CallerSourceName);
        using var harness = new BreakerHarness(o => o.FailureThreshold = 1);
        var status = HttpStatusCode.InternalServerError;
        Activity? currentDownstream = null;
        harness.Mock.When("*").Respond(() =>
        {
            currentDownstream = Activity.Current;
            return Task.FromResult(new HttpResponseMessage(status));
        });
        using var client = harness.CreateClient();
        await SendAsync(client, host);
        harness.Time.Advance(TimeSpan.FromSeconds(30));
        status = HttpStatusCode.OK;

        Activity? request;
        using (request = caller.StartActivity("GET /profile"))
        {
            await SendAsync(client, host);
        }

        var probe = Assert.Single(spans.Stopped, a => a.Source.Name == CircuitBreakerTelemetry.ActivitySourceName);
        Assert.Equal("circuit_breaker.probe", probe.OperationName);
        Assert.Equal(ActivityKind.Internal, probe.Kind);
        Assert.Equal("users", probe.GetTagItem("http.client.name"));
        Assert.Equal(host, probe.GetTagItem("server.address"));
        Assert.Equal(80, probe.GetTagItem("server.port"));
        Assert.Equal("half_open", probe.GetTagItem("circuit.state"));
        Assert.Equal("success", probe.GetTagItem("circuit.probe.result"));
        Assert.Null(probe.GetTagItem("error.type"));
        Assert.Equal(ActivityStatusCode.Unset, probe.Status);
        Assert.Equal(request!.SpanId, probe.ParentSpanId);
        Assert.Same(probe, currentDownstream); // the downstream HTTP span would be the probe's child
    }

    [Fact]
    public async Task Probe_AnsweredAsynchronously_LeavesTheCallersActivityCurrentForTheHandlersAboveTheBreaker()
    {
        const string host = "trace-probe-async.test";
        using var spans = new ActivityCollector(
            a => a.Source.Name == CallerSourceName || Equals(a.GetTagItem("server.address"), host),
            CallerSourceName);
        using var caller = new ActivitySource(CallerSourceName);
        var above = new RetryOnceHandler();
        var collection = new ServiceCollection();
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
        using var mock = new MockHttpMessageHandler();
        collection.AddSingleton<TimeProvider>(time);
        collection.AddHttpClient("users")
            .AddHttpMessageHandler(() => above) // above the breaker, as a retry or logging handler would be
            .AddCircuitBreaker(o => o.FailureThreshold = 1)
            .ConfigurePrimaryHttpMessageHandler(() => mock);
        mock.When("*").Respond(async () =>
        {
            await Task.Yield(); // a real downstream answers asynchronously
            return new HttpResponseMessage(HttpStatusCode.InternalServerError);
        });
        await using var services = collection.BuildServiceProvider();
        using var client = services.GetRequiredService<IHttpClientFactory>().CreateClient("users");
        above.Retry = false;
        await SendAsync(client, host); // opens
        time.Advance(TimeSpan.FromSeconds(30));
        above.Retry = true;

        Activity? request;
        using (request = caller.StartActivity("GET /profile"))
        {
            await Assert.ThrowsAsync<CircuitOpenException>(() => client.GetAsync(Uri(host))); // a failed probe, then the retry turned away
        }

        Assert.NotNull(request);
        Assert.Equal([request, request], above.CurrentAfterEachAttempt);
        var probe = Assert.Single(spans.Stopped, a => a.OperationName == "circuit_breaker.probe");
        var rejection = Assert.Single(spans.Stopped, a => a.OperationName == "circuit_breaker.rejected");
        Assert.Equal(request.SpanId, probe.ParentSpanId);
        Assert.Equal(request.SpanId, rejection.ParentSpanId); // the retry is the request's child, not the ended probe's
    }

    [Theory]
    [InlineData(HttpStatusCode.ServiceUnavailable, "503")]
    [InlineData(HttpStatusCode.InternalServerError, "500")]
    public async Task Probe_ThatFails_IsAnErrorSpanWithResultFailureAndTheErrorType(HttpStatusCode status, string errorType)
    {
        var host = $"trace-probe-failure-{errorType}.test";
        using var spans = ActivityCollector.ForHost(host);
        using var harness = new BreakerHarness(o => o.FailureThreshold = 1);
        harness.Mock.When("*").Respond(status);
        using var client = harness.CreateClient();
        await SendAsync(client, host);
        harness.Time.Advance(TimeSpan.FromSeconds(30));

        await SendAsync(client, host);

        var probe = Assert.Single(spans.Stopped);
        Assert.Equal("circuit_breaker.probe", probe.OperationName);
        Assert.Equal("failure", probe.GetTagItem("circuit.probe.result"));
        Assert.Equal(errorType, probe.GetTagItem("error.type"));
        Assert.Equal(ActivityStatusCode.Error, probe.Status);
        Assert.Equal(errorType, probe.StatusDescription);
        Assert.Equal(CircuitState.Open, harness.Circuit($"http://{host}:80").State);
    }

    [Fact]
    public async Task Probe_ThatTimesOut_IsAFailureTaggedTimeout()
    {
        const string host = "trace-probe-timeout.test";
        using var spans = ActivityCollector.ForHost(host);
        using var harness = new BreakerHarness(o =>
        {
            o.FailureThreshold = 1;
            o.AttemptTimeout = TimeSpan.FromSeconds(2);
        });
        var hang = new TaskCompletionSource();
        var calls = 0;
        harness.Mock.When("*").Respond(async () =>
        {
            if (++calls > 1)
            {
                await hang.Task;
            }

            return new HttpResponseMessage(HttpStatusCode.InternalServerError);
        });
        using var client = harness.CreateClient();
        await SendAsync(client, host);
        harness.Time.Advance(TimeSpan.FromSeconds(30));

        var probing = client.GetAsync(Uri(host));
        harness.Time.Advance(TimeSpan.FromSeconds(2));
        hang.SetResult();
        await Assert.ThrowsAsync<TaskCanceledException>(() => probing);

        var probe = Assert.Single(spans.Stopped);
        Assert.Equal("failure", probe.GetTagItem("circuit.probe.result"));
        Assert.Equal("timeout", probe.GetTagItem("error.type"));
        Assert.Equal(ActivityStatusCode.Error, probe.Status);
    }

    [Fact]
    public async Task OrdinaryCallsThroughAClosedCircuit_CreateNoSpan()
    {
        const string host = "trace-closed.test";
        using var spans = ActivityCollector.ForHost(host);
        using var harness = new BreakerHarness(o => o.FailureThreshold = 10);
        var calls = 0;
        var downstreamSawAnActivity = false;
        harness.Mock.When("*").Respond(() =>
        {
            downstreamSawAnActivity |= Activity.Current is not null;
            return Task.FromResult(new HttpResponseMessage(++calls % 3 == 0 ? HttpStatusCode.InternalServerError : HttpStatusCode.OK));
        });
        using var client = harness.CreateClient();

        for (var i = 0; i < 9; i++)
        {
            await SendAsync(client, host); // successes, and failures below the threshold
        }

        Assert.Equal(CircuitState.Closed, harness.Circuit($"http://{host}:80").State);
        Assert.Equal(1, harness.Circuit($"http://{host}:80").ConsecutiveFailures); // the ninth call failed: the breaker did count
        Assert.Empty(spans.Stopped);
        Assert.False(downstreamSawAnActivity);
    }

    private static Uri Uri(string host) => new($"http://{host}/profile");

    /// <summary>A handler above the breaker that sends a call a second time after a 5xx, noting the current activity after each attempt.</summary>
    private sealed class RetryOnceHandler : DelegatingHandler
    {
        public bool Retry { get; set; }

        public List<Activity?> CurrentAfterEachAttempt { get; } = [];

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var response = await base.SendAsync(request, cancellationToken);
            if (!Retry)
            {
                return response;
            }

            CurrentAfterEachAttempt.Add(Activity.Current);
            response.Dispose();
            try
            {
                return await base.SendAsync(request, cancellationToken);
            }
            finally
            {
                CurrentAfterEachAttempt.Add(Activity.Current);
            }
        }
    }

    private static async Task SendAsync(HttpClient client, string host) => (await client.GetAsync(Uri(host))).Dispose();
}
