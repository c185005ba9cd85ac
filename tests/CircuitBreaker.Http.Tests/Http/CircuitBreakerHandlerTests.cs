using System.Diagnostics.Metrics;
using System.Net;
using CircuitBreaker.Http.Tests.TestSupport;
using Microsoft.Extensions.Http.Resilience;
using Polly;
using Polly.Timeout;
using RichardSzalay.MockHttp;

namespace CircuitBreaker.Http.Tests.Http;

public sealed class CircuitBreakerHandlerTests
{
    private const string Users = "http://users.test:80";

    /// <summary>Only a guard against a hang: the awaited call ends at once when the library works.</summary>
    private static readonly TimeSpan Guard = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task SendAsync_FailingResponsesUpToThreshold_AreReturnedUnchangedAndThenTheCircuitOpens()
    {
        using var harness = new BreakerHarness(o => o.FailureThreshold = 2);
        var calls = harness.Mock.When("http://users.test/*").Respond(HttpStatusCode.InternalServerError, "text/plain", "boom");
        using var client = harness.CreateClient();

        for (var i = 0; i < 2; i++)
        {
            using var response = await client.GetAsync(new Uri("http://users.test/u/1"));
            Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
            Assert.Equal("boom", await response.Content.ReadAsStringAsync());
        }

        var ex = await Assert.ThrowsAsync<CircuitOpenException>(() => client.GetAsync(new Uri("http://users.test/u/1")));
        Assert.Equal(new CircuitKey(BreakerHarness.ClientName, Users), ex.CircuitKey);
        Assert.Equal(CircuitState.Open, ex.State);
        Assert.Equal(TimeSpan.FromSeconds(30), ex.RetryAfter);
        Assert.Contains(Users, ex.Message, StringComparison.Ordinal);
        Assert.Contains("30 s", ex.Message, StringComparison.Ordinal);
        Assert.Equal(2, harness.Mock.GetMatchCount(calls));
    }

    [Fact]
    public async Task SendAsync_ClientErrors_AreNotFailures()
    {
        using var harness = new BreakerHarness(o => o.FailureThreshold = 1);
        harness.Mock.When("*").Respond(HttpStatusCode.NotFound);
        using var client = harness.CreateClient();

        for (var i = 0; i < 5; i++)
        {
            using var response = await client.GetAsync(new Uri("http://users.test/missing"));
        }

        Assert.Equal(CircuitState.Closed, harness.Circuit(Users).State);
        Assert.Equal(0, harness.Circuit(Users).ConsecutiveFailures);
    }

    [Theory]
    [InlineData(HttpStatusCode.RequestTimeout, true)]
    [InlineData(HttpStatusCode.TooManyRequests, true)]
    [InlineData(HttpStatusCode.ServiceUnavailable, false)]
    public async Task SendAsync_ConfiguredFailureStatusCodes_DecideWhatCounts(HttpStatusCode status, bool counted)
    {
        using var harness = new BreakerHarness(o =>
        {
            o.FailureThreshold = 1;
            o.FailureStatusCodes = "408,429";
        });
        harness.Mock.When("*").Respond(status);
        using var client = harness.CreateClient();

        using var response = await client.GetAsync(new Uri("http://users.test/"));

        Assert.Equal(counted ? CircuitState.Open : CircuitState.Closed, harness.Circuit(Users).State);
    }

    [Fact]
    public async Task SendAsync_HttpRequestExceptionFromBelow_IsAFailureAndPropagates()
    {
        using var harness = new BreakerHarness(o => o.FailureThreshold = 1);
        harness.Mock.When("*").Throw(new HttpRequestException("Connection refused"));
        using var client = harness.CreateClient();

        var ex = await Assert.ThrowsAsync<HttpRequestException>(() => client.GetAsync(new Uri("http://users.test/")));

        Assert.IsNotType<CircuitOpenException>(ex);
        Assert.Equal(CircuitState.Open, harness.Circuit(Users).State);
    }

    [Fact]
    public async Task SendAsync_OtherExceptionFromBelow_IsNotCounted()
    {
        using var harness = new BreakerHarness(o => o.FailureThreshold = 1);
        harness.Mock.When("*").Throw(new InvalidOperationException("a bug in another handler"));
        using var client = harness.CreateClient();

        await Assert.ThrowsAsync<InvalidOperationException>(() => client.GetAsync(new Uri("http://users.test/")));

        Assert.Equal(CircuitState.Closed, harness.Circuit(Users).State);
    }

    [Fact]
    public async Task SendAsync_AttemptTimeoutExpires_ThrowsTaskCanceledWithTimeoutInnerAndCountsFailure()
    {
        using var harness = new BreakerHarness(o =>
        {
            o.FailureThreshold = 1;
            o.AttemptTimeout = TimeSpan.FromSeconds(2);
        });
        var hang = new TaskCompletionSource();
        harness.Mock.When("*").Respond(async () =>
        {
            await hang.Task;
            return new HttpResponseMessage(HttpStatusCode.OK);
        });
        using var client = harness.CreateClient();

        var call = client.GetAsync(new Uri("http://users.test/slow"));
        Assert.False(call.IsCompleted);
        harness.Time.Advance(TimeSpan.FromSeconds(2));
        hang.SetResult(); // the mock ignores cancellation; the handler's timeout token must win
        var ex = await Assert.ThrowsAsync<TaskCanceledException>(() => call);

        Assert.IsType<TimeoutException>(ex.InnerException);
        Assert.Contains("AttemptTimeout", ex.Message, StringComparison.Ordinal);
        Assert.Equal(CircuitState.Open, harness.Circuit(Users).State);
    }

    [Fact]
    public async Task SendAsync_CallerCancels_PlainCancellationAndNotCounted()
    {
        using var harness = new BreakerHarness(o => o.FailureThreshold = 1);
        var never = new TaskCompletionSource<HttpResponseMessage>(); // MockHttp ends a pending response when its token fires
        harness.Mock.When("*").Respond(() => never.Task);
        using var client = harness.CreateClient();
        using var cancellation = new CancellationTokenSource();

        var call = client.GetAsync(new Uri("http://users.test/"), cancellation.Token);
        await cancellation.CancelAsync();
        var ex = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => call.WaitAsync(Guard));

        Assert.IsNotType<TimeoutException>(ex.InnerException);
        Assert.Equal(CircuitState.Closed, harness.Circuit(Users).State);
        Assert.Equal(0, harness.Circuit(Users).ConsecutiveFailures);
    }

    [Fact]
    public async Task SendAsync_SlowCall_IsCountedAsFailureButReturned()
    {
        using var harness = new BreakerHarness(o =>
        {
            o.FailureThreshold = 1;
            o.SlowCallDuration = TimeSpan.FromSeconds(1);
        });
        harness.Mock.When("*").Respond(() =>
        {
            harness.Time.Advance(TimeSpan.FromSeconds(3));
            return Task.FromResult(new HttpResponseMessage(HttpStatusCode.OK));
        });
        using var client = harness.CreateClient();

        using var response = await client.GetAsync(new Uri("http://users.test/"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(CircuitState.Open, harness.Circuit(Users).State);
    }

    [Fact]
    public async Task SendAsync_HalfOpenProbeSucceeds_ClosesTheCircuit()
    {
        using var harness = new BreakerHarness(o => o.FailureThreshold = 1);
        var status = HttpStatusCode.BadGateway;
        harness.Mock.When("*").Respond(() => Task.FromResult(new HttpResponseMessage(status)));
        using var client = harness.CreateClient();
        (await client.GetAsync(new Uri("http://users.test/"))).Dispose();

        harness.Time.Advance(TimeSpan.FromSeconds(30));
        Assert.Equal(CircuitState.HalfOpen, harness.Circuit(Users).State);
        status = HttpStatusCode.OK;
        using var probe = await client.GetAsync(new Uri("http://users.test/"));

        Assert.Equal(HttpStatusCode.OK, probe.StatusCode);
        Assert.Equal(CircuitState.Closed, harness.Circuit(Users).State);
    }

    [Fact]
    public async Task SendAsync_WhileProbeInFlight_OtherCallsFailFast()
    {
        using var harness = new BreakerHarness(o => o.FailureThreshold = 1);
        var release = new TaskCompletionSource<HttpResponseMessage>();
        var first = true;
        harness.Mock.When("*").Respond(() =>
        {
            if (first)
            {
                first = false;
                return Task.FromResult(new HttpResponseMessage(HttpStatusCode.InternalServerError));
            }

            return release.Task;
        });
        using var client = harness.CreateClient();
        (await client.GetAsync(new Uri("http://users.test/"))).Dispose();
        harness.Time.Advance(TimeSpan.FromSeconds(30));

        var probe = client.GetAsync(new Uri("http://users.test/"));
        var ex = await Assert.ThrowsAsync<CircuitOpenException>(() => client.GetAsync(new Uri("http://users.test/")));
        release.SetResult(new HttpResponseMessage(HttpStatusCode.OK));
        (await probe).Dispose();

        Assert.Equal(CircuitState.HalfOpen, ex.State);
        Assert.Null(ex.RetryAfter);
        Assert.Equal(CircuitState.Closed, harness.Circuit(Users).State);
    }

    [Fact]
    public async Task SendAsync_AFailuresListenerThrowsOnAFailedProbe_TheCallerGetsItsResponse_AndTheCircuitReopens()
    {
        // A listener is process-wide and tests run in parallel: it throws only for a host of this test's own.
        const string host = "failures-listener-fault.test";
        using var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Name == CircuitBreakerTelemetry.MeterName && instrument.Name == "circuit.failures")
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        var failing = false;
        listener.SetMeasurementEventCallback<long>((_, _, tags, _) =>
        {
            foreach (var tag in tags)
            {
                if (failing && tag.Key == "server.address" && Equals(tag.Value, host))
                {
                    throw new InvalidOperationException("a broken listener");
                }
            }
        });
        listener.Start();
        using var harness = new BreakerHarness(o => o.FailureThreshold = 1);
        harness.Mock.When("*").Respond(HttpStatusCode.ServiceUnavailable);
        using var client = harness.CreateClient();
        var uri = new Uri($"http://{host}/");
        (await client.GetAsync(uri)).Dispose();
        harness.Time.Advance(TimeSpan.FromSeconds(30));
        failing = true;

        // The probe fails, and the caller gets the probe's own response, not the listener's fault...
        using (var failed = await client.GetAsync(uri))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, failed.StatusCode);
        }

        failing = false;

        // ...and the circuit recorded the failed probe: open again, and half-open after the next break, with its slot free.
        var authority = $"http://{host}:80";
        Assert.Equal(CircuitState.Open, harness.Registry.GetCircuits().Single(c => c.Key.Authority == authority).State);
        harness.Time.Advance(TimeSpan.FromSeconds(60));
        using var probe = await client.GetAsync(uri).WaitAsync(Guard);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, probe.StatusCode);
    }

    [Fact]
    public void Send_Synchronous_GoesThroughTheBreakerToo()
    {
        using var harness = new BreakerHarness(o => o.FailureThreshold = 1);
        harness.Mock.When("*").Respond(HttpStatusCode.ServiceUnavailable);
        using var client = harness.CreateClient();

        using (var request = new HttpRequestMessage(HttpMethod.Get, "http://users.test/"))
        {
            client.Send(request).Dispose();
        }

        using var second = new HttpRequestMessage(HttpMethod.Get, "http://users.test/");
        Assert.Throws<CircuitOpenException>(() => client.Send(second));
    }

    [Fact]
    public async Task SendAsync_EachAuthorityHasItsOwnCircuit()
    {
        using var harness = new BreakerHarness(o => o.FailureThreshold = 1);
        harness.Mock.When("http://users.test/*").Respond(HttpStatusCode.InternalServerError);
        harness.Mock.When("http://users.test:8080/*").Respond(HttpStatusCode.OK);
        harness.Mock.When("http://orders.test/*").Respond(HttpStatusCode.OK);
        using var client = harness.CreateClient();

        (await client.GetAsync(new Uri("http://users.test/"))).Dispose();
        using var otherPort = await client.GetAsync(new Uri("http://users.test:8080/"));
        using var otherHost = await client.GetAsync(new Uri("http://orders.test/"));

        Assert.Equal(HttpStatusCode.OK, otherPort.StatusCode);
        Assert.Equal(HttpStatusCode.OK, otherHost.StatusCode);
        Assert.Equal(CircuitState.Open, harness.Circuit(Users).State);
        Assert.Equal(CircuitState.Closed, harness.Circuit("http://users.test:8080").State);
    }

    [Fact]
    public async Task SendAsync_HostOverride_AppliesToEveryPortOfThatHostOnly()
    {
        using var harness = new BreakerHarness(o =>
        {
            o.FailureThreshold = 5;
            o.Hosts["USERS.test"] = new CircuitBreakerHostOptions { FailureThreshold = 1 };
        });
        harness.Mock.When("*").Respond(HttpStatusCode.InternalServerError);
        using var client = harness.CreateClient();

        foreach (var uri in new[] { "http://users.test/", "http://users.test:8080/", "http://orders.test/" })
        {
            (await client.GetAsync(new Uri(uri))).Dispose();
        }

        Assert.Equal(CircuitState.Open, harness.Circuit(Users).State);
        Assert.Equal(CircuitState.Open, harness.Circuit("http://users.test:8080").State);
        Assert.Equal(CircuitState.Closed, harness.Circuit("http://orders.test:80").State);
    }

    [Fact]
    public async Task SendAsync_RelativeUriWithoutBaseAddress_ThrowsClearError()
    {
        using var harness = new BreakerHarness();
        using var invoker = Invoker(harness, harness.Mock);
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri("/relative", UriKind.Relative));

        var ex = await Assert.ThrowsAsync<InvalidOperationException>(() => invoker.SendAsync(request, CancellationToken.None));

        Assert.Contains("RequestUri", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SendAsync_CallerCancelledBeforeTheCall_TheCallBelowStartsCancelled_AndItIsNotCounted()
    {
        using var harness = new BreakerHarness(o => o.FailureThreshold = 1);
        bool? cancelledOnEntry = null;
        using var invoker = Invoker(harness, new FuncHandler(token =>
        {
            cancelledOnEntry = token.IsCancellationRequested;
            return Task.FromCanceled<HttpResponseMessage>(token);
        }));
        using var cancellation = new CancellationTokenSource();
        await cancellation.CancelAsync();
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri("http://users.test/"));

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => invoker.SendAsync(request, cancellation.Token));

        Assert.True(cancelledOnEntry);
        Assert.Equal(0, harness.Circuit(Users).ConsecutiveFailures);
    }

    [Fact]
    public async Task SendAsync_CallerCancelsBeforeTheCallBelowHasReturnedItsTask_ThePendingCallIsCancelled()
    {
        using var harness = new BreakerHarness(o => o.FailureThreshold = 1);
        using var cancellation = new CancellationTokenSource();
        using var invoker = Invoker(harness, new FuncHandler(token =>
        {
            // The caller gives up while the call below is still running synchronously, then it waits for its token.
            cancellation.Cancel();
            return new TaskCompletionSource<HttpResponseMessage>().Task.WaitAsync(token);
        }));
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri("http://users.test/"));

        var ex = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => invoker.SendAsync(request, cancellation.Token).WaitAsync(Guard));

        Assert.IsNotType<TimeoutException>(ex.InnerException);
        Assert.Equal(CircuitState.Closed, harness.Circuit(Users).State);
        Assert.Equal(0, harness.Circuit(Users).ConsecutiveFailures);
    }

    [Fact]
    public async Task SendAsync_ConnectTimeoutOfTheHandlerBelow_IsAFailureAndPropagatesUnchanged()
    {
        // SocketsHttpHandler.ConnectTimeout (what a host that drops connection attempts runs into) surfaces as a
        // TaskCanceledException with a TimeoutException inside, and nobody cancelled: not the caller, not AttemptTimeout.
        using var harness = new BreakerHarness(o => o.FailureThreshold = 1);
        using var invoker = Invoker(harness, new SocketsHttpHandler
        {
            ConnectTimeout = TimeSpan.FromMilliseconds(1),
            ConnectCallback = async (_, token) =>
            {
                await Task.Delay(Timeout.Infinite, token);
                throw new InvalidOperationException("unreachable");
            },
        });
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri("http://users.test/"));

        var ex = await Assert.ThrowsAsync<TaskCanceledException>(() => invoker.SendAsync(request, CancellationToken.None).WaitAsync(Guard));

        Assert.IsType<TimeoutException>(ex.InnerException);
        Assert.DoesNotContain("AttemptTimeout", ex.Message, StringComparison.Ordinal);
        Assert.Equal(CircuitState.Open, harness.Circuit(Users).State);
    }

    [Fact]
    public async Task SendAsync_TimeoutOfAResilienceHandlerBelow_IsAFailureAndPropagatesUnchanged()
    {
        // AddResilienceHandler and AddStandardResilienceHandler time out with Polly's TimeoutRejectedException, not a
        // TaskCanceledException: a host that hangs below such a timeout must open the circuit as one below ConnectTimeout does.
        using var harness = new BreakerHarness(o =>
        {
            o.FailureThreshold = 1;
            o.AttemptTimeout = null;
        });
        var pipeline = new ResiliencePipelineBuilder<HttpResponseMessage> { TimeProvider = harness.Time }.AddTimeout(TimeSpan.FromSeconds(1)).Build();
        using var invoker = Invoker(harness, new ResilienceHandler(pipeline)
        {
            InnerHandler = new FuncHandler(token => new TaskCompletionSource<HttpResponseMessage>().Task.WaitAsync(token)),
        });
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri("http://users.test/"));

        var sending = invoker.SendAsync(request, CancellationToken.None);
        harness.Time.Advance(TimeSpan.FromSeconds(1));

        await Assert.ThrowsAsync<TimeoutRejectedException>(() => sending.WaitAsync(Guard));
        Assert.Equal(CircuitState.Open, harness.Circuit(Users).State);
    }

    [Fact]
    public void Send_TimeoutOfAResilienceHandlerBelow_IsAFailure()
    {
        using var harness = new BreakerHarness(o => o.FailureThreshold = 1);
        using var invoker = Invoker(harness, new FuncHandler(_ => throw new TimeoutRejectedException()));
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri("http://users.test/"));

        Assert.Throws<TimeoutRejectedException>(() => invoker.Send(request, CancellationToken.None));

        Assert.Equal(CircuitState.Open, harness.Circuit(Users).State);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task SendAsync_TimeoutRaisedBelowTheBreaker_FailsAHalfOpenProbe(bool synchronous)
    {
        using var harness = new BreakerHarness(o => o.FailureThreshold = 1);
        var timedOut = false;
        using var invoker = Invoker(harness, new FuncHandler(_ => timedOut
            ? Task.FromException<HttpResponseMessage>(new TaskCanceledException("connect timed out", new TimeoutException("connect timed out")))
            : Task.FromResult(new HttpResponseMessage(HttpStatusCode.ServiceUnavailable))));
        using (var first = new HttpRequestMessage(HttpMethod.Get, new Uri("http://users.test/")))
        {
            (await invoker.SendAsync(first, CancellationToken.None)).Dispose();
        }

        harness.Time.Advance(TimeSpan.FromSeconds(30));
        timedOut = true;
        using var probe = new HttpRequestMessage(HttpMethod.Get, new Uri("http://users.test/"));
        await Assert.ThrowsAsync<TaskCanceledException>(async () =>
        {
            using var response = synchronous ? invoker.Send(probe, CancellationToken.None) : await invoker.SendAsync(probe, CancellationToken.None);
        });

        // The probe failed: open again for the next break, not half-open with its slot given back.
        Assert.Equal(CircuitState.Open, harness.Circuit(Users).State);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Probe_AnsweredWithNoResponseByAFaultyHandlerBelow_FailsAsWithoutTheBreaker_AndGivesItsSlotBack(bool synchronous)
    {
        // A handler that returns null breaks its contract, which HttpClient reports; the breaker must not turn that
        // bug into a circuit stuck half-open, its probe slot taken by a call that ended long ago.
        using var harness = new BreakerHarness(o => o.FailureThreshold = 1);
        HttpResponseMessage? answer = new(HttpStatusCode.ServiceUnavailable);
        using var client = new HttpClient(new CircuitBreakerHandler(((CircuitBreakerRegistry)harness.Registry).GetClient(BreakerHarness.ClientName), harness.Time)
        {
            InnerHandler = new FuncHandler(_ => Task.FromResult(answer!)),
        });
        (await client.GetAsync(new Uri("http://users.test/"))).Dispose();
        harness.Time.Advance(TimeSpan.FromSeconds(30));

        answer = null;
        using var probe = new HttpRequestMessage(HttpMethod.Get, new Uri("http://users.test/"));
        var thrown = await Assert.ThrowsAsync<InvalidOperationException>(async () =>
        {
            using var response = synchronous ? client.Send(probe) : await client.SendAsync(probe);
        });

        Assert.Contains("did not return a response", thrown.Message, StringComparison.Ordinal);
        Assert.Equal(CircuitState.HalfOpen, harness.Circuit(Users).State);
        answer = new HttpResponseMessage(HttpStatusCode.OK);
        using var next = new HttpRequestMessage(HttpMethod.Get, new Uri("http://users.test/"));
        using var ok = synchronous ? client.Send(next) : await client.SendAsync(next);
        Assert.Equal(CircuitState.Closed, harness.Circuit(Users).State);
    }

    /// <summary>The harness's client's breaker alone, without the factory's pipeline, over <paramref name="below"/>.</summary>
    private static HttpMessageInvoker Invoker(BreakerHarness harness, HttpMessageHandler below) =>
        new(new CircuitBreakerHandler(((CircuitBreakerRegistry)harness.Registry).GetClient(BreakerHarness.ClientName), harness.Time)
        {
            InnerHandler = below,
        });

    private sealed class FuncHandler(Func<CancellationToken, Task<HttpResponseMessage>> send) : HttpMessageHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) => send(cancellationToken);

        protected override HttpResponseMessage Send(HttpRequestMessage request, CancellationToken cancellationToken) =>
            send(cancellationToken).GetAwaiter().GetResult();
    }
}
