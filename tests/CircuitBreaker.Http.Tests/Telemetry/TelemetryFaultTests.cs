using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Net;
using CircuitBreaker.Http.Tests.TestSupport;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using RichardSzalay.MockHttp;

namespace CircuitBreaker.Http.Tests.Telemetry;

/// <summary>
/// A metrics listener, a tracing listener or a logging provider that throws is the breaker's own machinery failing:
/// it must fail neither the call it was told about nor the circuit's move. Metric and activity listeners are
/// process-wide and tests run in parallel, so each listener here throws only for a host of its test's own.
/// </summary>
public sealed class TelemetryFaultTests
{
    [Fact]
    public async Task AFailuresListenerThatThrows_TheCallerStillGetsTheResponse_AndTheCircuitOpens()
    {
        const string host = "fault-failures-listener.test";
        using var listener = ThrowingMeterListener("circuit.failures", host);
        using var harness = new BreakerHarness(o => o.FailureThreshold = 1, BreakerLogs.WithFakeLogging);
        harness.Mock.When("*").Respond(HttpStatusCode.ServiceUnavailable);
        using var client = harness.CreateClient();

        using var response = await client.GetAsync(new Uri($"http://{host}/"));

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode); // as it would have without the breaker
        Assert.Equal(CircuitState.Open, harness.Circuit($"http://{host}:80").State);
        var fault = Assert.Single(BreakerLogs.Of(harness.Services), r => r.Id.Name == "CircuitTelemetryFailed");
        Assert.Equal(LogLevel.Warning, fault.Level);
        Assert.Equal("a broken listener", fault.Exception?.Message);
        Assert.Equal(15, fault.Id.Id);
    }

    [Fact]
    public async Task ARejectedListenerThatThrows_TheDegradedAnswerStillComes_AndTheFaultIsLoggedOnce()
    {
        const string host = "fault-rejected-listener.test";
        using var listener = ThrowingMeterListener("circuit.rejected", host);
        using var harness = new BreakerHarness(
            o =>
            {
                o.FailureThreshold = 1;
                o.Fallback.Degraded.StatusCode = 503;
            },
            BreakerLogs.WithFakeLogging);
        var sent = harness.Mock.When("*");
        sent.Respond(HttpStatusCode.InternalServerError);
        using var client = harness.CreateClient();
        var uri = new Uri($"http://{host}/");
        (await client.GetAsync(uri)).Dispose();

        using var first = await client.GetAsync(uri);
        using var second = await client.GetAsync(uri);

        Assert.Equal(HttpStatusCode.ServiceUnavailable, first.StatusCode);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, second.StatusCode);
        Assert.Equal(1, harness.Mock.GetMatchCount(sent)); // both answered without a call
        var fault = Assert.Single(BreakerLogs.Of(harness.Services), r => r.Id.Name == "CircuitTelemetryFailed");
        Assert.Contains("metrics", fault.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ARejectedListenerThatThrows_InObserveOnlyMode_TheCallIsStillSent()
    {
        const string host = "fault-observed-listener.test";
        using var listener = ThrowingMeterListener("circuit.rejected", host);
        using var harness = new BreakerHarness(o =>
        {
            o.FailureThreshold = 1;
            o.Enforce = false;
        });
        var status = HttpStatusCode.InternalServerError;
        harness.Mock.When("*").Respond(() => Task.FromResult(new HttpResponseMessage(status)));
        using var client = harness.CreateClient();
        var uri = new Uri($"http://{host}/");
        (await client.GetAsync(uri)).Dispose();
        status = HttpStatusCode.OK;

        using var response = await client.GetAsync(uri);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task ATracingListenerThatThrowsAsTheProbeSpanStarts_TheProbeIsSentWithoutItAndClosesTheCircuit(bool synchronous)
    {
        var host = synchronous ? "fault-probe-start-sync.test" : "fault-probe-start-async.test";
        using var listener = ThrowingActivityListener(host, onStart: true);
        using var pipeline = new PipelineWithHandlerAbove();
        var status = HttpStatusCode.InternalServerError;
        Activity? currentBelow = null;
        pipeline.Mock.When("*").Respond(() =>
        {
            currentBelow = Activity.Current;
            return Task.FromResult(new HttpResponseMessage(status));
        });
        var uri = new Uri($"http://{host}/");
        (await pipeline.Client.GetAsync(uri)).Dispose();
        pipeline.Time.Advance(TimeSpan.FromSeconds(30));
        status = HttpStatusCode.OK;

        using var caller = new Activity("caller").Start();
        using var response = await pipeline.SendAsync(uri, synchronous);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(CircuitState.Closed, pipeline.Registry.GetCircuits().Single(c => c.Key.Authority == $"http://{host}:80").State);

        // The span started, and became current, before the listener threw: neither the call below nor the handler
        // above runs under a span that is never ended.
        Assert.Same(caller, currentBelow);
        Assert.Same(caller, pipeline.CurrentAbove);
        Assert.Single(BreakerLogs.Of(pipeline.Services), r => r.Id.Name == "CircuitTelemetryFailed" && r.Message.Contains("tracing", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task ATracingListenerThatThrowsAsTheRejectionSpanStops_TheDegradedAnswerStillComes(bool synchronous)
    {
        var host = synchronous ? "fault-rejected-stop-sync.test" : "fault-rejected-stop-async.test";
        using var listener = ThrowingActivityListener(host, onStart: false);
        using var pipeline = new PipelineWithHandlerAbove(o => o.Fallback.Degraded.StatusCode = 503);
        pipeline.Mock.When("*").Respond(HttpStatusCode.InternalServerError);
        var uri = new Uri($"http://{host}/");
        (await pipeline.Client.GetAsync(uri)).Dispose();

        using var caller = new Activity("caller").Start();
        using var response = await pipeline.SendAsync(uri, synchronous);

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal("degraded", response.Headers.GetValues("X-Circuit-Fallback").Single());

        // Stopping tells the listeners before it makes the span's parent current again.
        Assert.Same(caller, pipeline.CurrentAbove);
    }

    [Fact]
    public async Task ALoggingProviderThatThrows_TheProbeThatClosesTheCircuitStillReturnsItsResponse()
    {
        using var harness = new BreakerHarness(
            o => o.FailureThreshold = 1,
            s => s.AddLogging(b => b.AddProvider(new ThrowingLoggerProvider(category => category == BreakerLogs.Category)).SetMinimumLevel(LogLevel.Trace)));
        var status = HttpStatusCode.InternalServerError;
        harness.Mock.When("*").Respond(() => Task.FromResult(new HttpResponseMessage(status)));
        using var client = harness.CreateClient();
        var uri = new Uri("http://fault-logger.test/");

        // The failure that opens the circuit is logged (CircuitOpened) and still comes back as it was.
        using (var failed = await client.GetAsync(uri))
        {
            Assert.Equal(HttpStatusCode.InternalServerError, failed.StatusCode);
        }

        harness.Time.Advance(TimeSpan.FromSeconds(30));
        status = HttpStatusCode.OK;
        using var probe = await client.GetAsync(uri);

        Assert.Equal(HttpStatusCode.OK, probe.StatusCode);
        Assert.Equal(CircuitState.Closed, harness.Circuit("http://fault-logger.test:80").State);
    }

    private static MeterListener ThrowingMeterListener(string instrumentName, string host)
    {
        var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Name == CircuitBreakerTelemetry.MeterName && instrument.Name == instrumentName)
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
        return listener;
    }

    private static ActivityListener ThrowingActivityListener(string host, bool onStart)
    {
        void ThrowForHost(Activity activity)
        {
            if (Equals(activity.GetTagItem("server.address"), host))
            {
                throw new InvalidOperationException("a broken listener");
            }
        }

        var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == CircuitBreakerTelemetry.ActivitySourceName,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStarted = onStart ? ThrowForHost : null,
            ActivityStopped = onStart ? null : ThrowForHost,
        };
        ActivitySource.AddActivityListener(listener);
        return listener;
    }

    /// <summary>
    /// A client with a handler above the breaker that notes <see cref="Activity.Current"/> as the call comes back up,
    /// as a retry handler would go on under it; a circuit opens at the first failure.
    /// </summary>
    private sealed class PipelineWithHandlerAbove : IDisposable
    {
        private readonly ServiceProvider _services;

        public PipelineWithHandlerAbove(Action<CircuitBreakerOptions>? configure = null)
        {
            var services = new ServiceCollection();
            services.AddSingleton<TimeProvider>(Time);
            BreakerLogs.WithFakeLogging(services);
            services.AddHttpClient("users")
                .AddHttpMessageHandler(() => new CurrentActivityRecorder(this))
                .AddCircuitBreaker(o =>
                {
                    o.FailureThreshold = 1;
                    configure?.Invoke(o);
                })
                .ConfigurePrimaryHttpMessageHandler(() => Mock);
            _services = services.BuildServiceProvider();
            Client = _services.GetRequiredService<IHttpClientFactory>().CreateClient("users");
        }

        public FakeTimeProvider Time { get; } = new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));

        public MockHttpMessageHandler Mock { get; } = new();

        public HttpClient Client { get; }

        public IServiceProvider Services => _services;

        public ICircuitBreakerRegistry Registry => _services.GetRequiredService<ICircuitBreakerRegistry>();

        /// <summary>The current activity the handler above the breaker saw as the last call came back up.</summary>
        public Activity? CurrentAbove { get; set; }

        public async Task<HttpResponseMessage> SendAsync(Uri uri, bool synchronous)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, uri);
            return synchronous ? Client.Send(request) : await Client.SendAsync(request);
        }

        public void Dispose()
        {
            Client.Dispose();
            _services.Dispose();
            Mock.Dispose();
        }

        private sealed class CurrentActivityRecorder(PipelineWithHandlerAbove pipeline) : DelegatingHandler
        {
            protected override HttpResponseMessage Send(HttpRequestMessage request, CancellationToken cancellationToken)
            {
                var response = base.Send(request, cancellationToken);
                pipeline.CurrentAbove = Activity.Current;
                return response;
            }

            protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
            {
                var response = await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
                pipeline.CurrentAbove = Activity.Current;
                return response;
            }
        }
    }
}
