using System.Net;
using System.Net.Http.Headers;
using CircuitBreaker.Http.Tests.Telemetry;
using CircuitBreaker.Http.Tests.TestSupport;
using Microsoft.Extensions.DependencyInjection;
using Polly.Timeout;
using RichardSzalay.MockHttp;

namespace CircuitBreaker.Http.Tests.Fallback;

public sealed class FallbackChainTests
{
    private static readonly Uri Users = new("http://users.test/u/1");

    [Fact]
    public async Task OpenCircuit_WithoutFallback_ThrowsCircuitOpenException()
    {
        var (harness, client) = await OpenAsync(_ => { });
        using var _ = harness;
        using var __ = client;

        await Assert.ThrowsAsync<CircuitOpenException>(() => client.GetAsync(Users));
    }

    [Fact]
    public async Task Degraded_IsServedWithItsHeadersAndMarks()
    {
        var (harness, client) = await OpenAsync(
            o =>
            {
                o.Fallback.Degraded.StatusCode = 200;
                o.Fallback.Degraded.ContentType = "application/json";
                o.Fallback.Degraded.Body = """{"user":null,"fallback":true}""";
                o.Fallback.Degraded.Headers["X-Degraded"] = "1";
                o.Fallback.Degraded.Headers["Content-Language"] = "en";
            });
        using var _ = harness;
        using var __ = client;
        harness.Time.Advance(TimeSpan.FromSeconds(10.2));

        using var response = await client.GetAsync(Users);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("""{"user":null,"fallback":true}""", await response.Content.ReadAsStringAsync());
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(["1"], response.Headers.GetValues("X-Degraded"));
        Assert.Equal(["en"], response.Content.Headers.ContentLanguage);
        Assert.Equal(["degraded"], response.Headers.GetValues("X-Circuit-Fallback"));
        Assert.Equal(TimeSpan.FromSeconds(20), response.Headers.RetryAfter?.Delta); // 19.8 s rounded up
        Assert.Equal(Users, response.RequestMessage?.RequestUri);
    }

    [Fact]
    public async Task Degraded_BodyWithoutStatus_Is503()
    {
        var (harness, client) = await OpenAsync(o => (o.Fallback.Degraded.Body, o.Fallback.Degraded.ContentType) = ("down", "text/plain"));
        using var _ = harness;
        using var __ = client;

        using var response = await client.GetAsync(Users);

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal("down", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Cache_ReplaysLastGoodResponseWithAgeAndMarks()
    {
        using var harness = new BreakerHarness(o =>
        {
            o.FailureThreshold = 1;
            o.Fallback.Cache.Enabled = true;
        });
        var status = HttpStatusCode.OK;
        harness.Mock.When("*").Respond(() => Task.FromResult(Response(status, "alice", ("ETag", "\"v1\""))));
        using var client = harness.CreateClient();
        Assert.Equal("alice", await client.GetStringAsync(Users));
        status = HttpStatusCode.InternalServerError;
        (await client.GetAsync(Users)).Dispose(); // opens
        harness.Time.Advance(TimeSpan.FromSeconds(7));

        using var replay = await client.GetAsync(Users);

        Assert.Equal(HttpStatusCode.OK, replay.StatusCode);
        Assert.Equal("alice", await replay.Content.ReadAsStringAsync());
        Assert.Equal("\"v1\"", replay.Headers.ETag?.Tag);
        Assert.Equal("text/plain", replay.Content.Headers.ContentType?.MediaType);
        Assert.Equal(["cache"], replay.Headers.GetValues("X-Circuit-Fallback"));
        Assert.Equal(TimeSpan.FromSeconds(7), replay.Headers.Age);
        Assert.Equal(TimeSpan.FromSeconds(23), replay.Headers.RetryAfter?.Delta);
    }

    [Fact]
    public async Task Cache_ReplayThroughAHandlerAboveTheBreakerThatAddsAHeader_CarriesThatHeaderOnce()
    {
        using var harness = new BreakerHarness(
            o =>
            {
                o.FailureThreshold = 1;
                o.Fallback.Cache.Enabled = true;
            },
            services => services.AddHttpClient(BreakerHarness.ClientName)
                .ConfigureAdditionalHttpMessageHandlers((handlers, _) => handlers.Insert(0, new AddResponseHeaderHandler("X-Correlation", "c1"))));
        using var client = await CacheThenOpenAsync(harness);

        using var replay = await client.GetAsync(Users);

        Assert.Equal(["cache"], replay.Headers.GetValues("X-Circuit-Fallback"));
        Assert.Equal(["c1"], replay.Headers.GetValues("X-Correlation"));
    }

    [Fact]
    public async Task Cache_HeaderTheCallerAddsToTheLiveResponseBeforeReadingItsBody_IsNotReplayed()
    {
        using var harness = new BreakerHarness(o =>
        {
            o.FailureThreshold = 1;
            o.Fallback.Cache.Enabled = true;
        });
        var status = HttpStatusCode.OK;
        harness.Mock.When("*").Respond(() => Task.FromResult(Response(status, "alice")));
        using var client = harness.CreateClient();
        using (var live = await client.GetAsync(Users, HttpCompletionOption.ResponseHeadersRead))
        {
            live.Headers.TryAddWithoutValidation("X-Caller", "mine");
            Assert.Equal("alice", await live.Content.ReadAsStringAsync());
        }

        status = HttpStatusCode.InternalServerError;
        (await client.GetAsync(Users)).Dispose(); // opens

        using var replay = await client.GetAsync(Users);

        Assert.Equal(["cache"], replay.Headers.GetValues("X-Circuit-Fallback"));
        Assert.Equal("alice", await replay.Content.ReadAsStringAsync());
        Assert.False(replay.Headers.Contains("X-Caller"));
    }

    [Fact]
    public async Task Cache_EntryOlderThanMaxAge_IsNotReplayed()
    {
        using var harness = new BreakerHarness(o =>
        {
            o.FailureThreshold = 1;
            o.BreakDuration = TimeSpan.FromMinutes(10);
            o.Fallback.Cache.Enabled = true;
            o.Fallback.Cache.MaxAge = TimeSpan.FromMinutes(1);
        });
        var status = HttpStatusCode.OK;
        harness.Mock.When("*").Respond(() => Task.FromResult(Response(status, "alice")));
        using var client = harness.CreateClient();
        await client.GetStringAsync(Users);
        status = HttpStatusCode.InternalServerError;
        (await client.GetAsync(Users)).Dispose();

        harness.Time.Advance(TimeSpan.FromSeconds(61));

        await Assert.ThrowsAsync<CircuitOpenException>(() => client.GetAsync(Users));
    }

    [Fact]
    public async Task Cache_DifferentUrlOrMethod_IsNotReplayed()
    {
        using var harness = new BreakerHarness(o =>
        {
            o.FailureThreshold = 1;
            o.Fallback.Cache.Enabled = true;
        });
        var status = HttpStatusCode.OK;
        harness.Mock.When("*").Respond(() => Task.FromResult(Response(status, "alice")));
        using var client = harness.CreateClient();
        await client.GetStringAsync(Users);
        status = HttpStatusCode.InternalServerError;
        (await client.GetAsync(Users)).Dispose();

        await Assert.ThrowsAsync<CircuitOpenException>(() => client.GetAsync(new Uri("http://users.test/u/2")));
        await Assert.ThrowsAsync<CircuitOpenException>(() => client.GetAsync(new Uri("http://users.test/u/1?x=1")));
        using var post = new StringContent("x");
        await Assert.ThrowsAsync<CircuitOpenException>(() => client.PostAsync(Users, post));
    }

    [Fact]
    public async Task Custom_ComesFirstAndIsGivenTheCachedResponse()
    {
        CircuitFallbackContext? seen = null;
        string? cachedBody = null;
        using var harness = new BreakerHarness(o =>
        {
            o.FailureThreshold = 1;
            o.Fallback.Cache.Enabled = true;
            o.Fallback.Degraded.StatusCode = 503;
            o.Fallback.OnOpen = async context =>
            {
                seen = context;
                cachedBody = await context.CachedResponse!.Content.ReadAsStringAsync();
                return new HttpResponseMessage(HttpStatusCode.Accepted);
            };
        });
        var status = HttpStatusCode.OK;
        harness.Mock.When("*").Respond(() => Task.FromResult(Response(status, "alice")));
        using var client = harness.CreateClient();
        await client.GetStringAsync(Users);
        status = HttpStatusCode.InternalServerError;
        (await client.GetAsync(Users)).Dispose();

        using var response = await client.GetAsync(Users);

        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        Assert.Equal(["custom"], response.Headers.GetValues("X-Circuit-Fallback"));
        Assert.NotNull(response.Headers.RetryAfter);
        Assert.Equal("alice", cachedBody);
        Assert.Equal(new CircuitKey(BreakerHarness.ClientName, "http://users.test:80"), seen!.CircuitKey);
        Assert.Equal(CircuitState.Open, seen.State);
        Assert.Null(seen.ShedReason); // turned away by the circuit, not shed by a limit
        Assert.Equal(TimeSpan.FromSeconds(30), seen.RetryAfter);
        Assert.Equal(Users, seen.Request.RequestUri);
    }

    [Fact]
    public async Task Custom_AnswerBuiltWithoutARequestMessage_CarriesTheCallersRequest_AsEveryFallbackDoes()
    {
        var (harness, client) = await OpenAsync(o => o.Fallback.OnOpen = _ =>
            ValueTask.FromResult<HttpResponseMessage?>(new HttpResponseMessage(HttpStatusCode.OK) { Content = new StringContent("anonymous") }));
        using var _ = harness;
        using var __ = client;
        using var request = new HttpRequestMessage(HttpMethod.Get, Users);

        using var response = await client.SendAsync(request);

        Assert.Equal(["custom"], response.Headers.GetValues("X-Circuit-Fallback"));
        Assert.Same(request, response.RequestMessage);
    }

    [Fact]
    public async Task Custom_ReturningNull_GoesOnDownTheChain()
    {
        var asked = 0;
        var (harness, client) = await OpenAsync(o =>
            {
                o.Fallback.OnOpen = _ =>
                {
                    asked++;
                    return ValueTask.FromResult<HttpResponseMessage?>(null);
                };
                o.Fallback.Degraded.StatusCode = 503;
            });
        using var _ = harness;
        using var __ = client;

        using var response = await client.GetAsync(Users);

        Assert.Equal(1, asked);
        Assert.Equal(["degraded"], response.Headers.GetValues("X-Circuit-Fallback"));
    }

    [Fact]
    public async Task Custom_Throwing_IsSkipped()
    {
        var (harness, client) = await OpenAsync(o =>
            {
                o.Fallback.OnOpen = _ => throw new InvalidOperationException("bug in the fallback");
                o.Fallback.Degraded.StatusCode = 503;
            });
        using var _ = harness;
        using var __ = client;

        using var response = await client.GetAsync(Users);

        Assert.Equal(["degraded"], response.Headers.GetValues("X-Circuit-Fallback"));
    }

    [Fact]
    public async Task Alternate_ResendsSamePathAndQueryUnderItsOwnCircuit()
    {
        using var harness = new BreakerHarness(o =>
        {
            o.FailureThreshold = 1;
            o.Fallback.AlternateBaseAddress = new Uri("https://backup.test:8443/ignored/path");
        });
        harness.Mock.When("http://users.test/*").Respond(HttpStatusCode.InternalServerError);
        var backup = harness.Mock.When("https://backup.test:8443/u/1?x=2").Respond("text/plain", "from backup");
        using var client = harness.CreateClient();
        (await client.GetAsync(new Uri("http://users.test/u/1?x=2"))).Dispose();

        using var response = await client.GetAsync(new Uri("http://users.test/u/1?x=2"));

        Assert.Equal("from backup", await response.Content.ReadAsStringAsync());
        Assert.Equal(["alternate"], response.Headers.GetValues("X-Circuit-Fallback"));
        Assert.Equal(1, harness.Mock.GetMatchCount(backup));
        Assert.Equal(CircuitState.Closed, harness.Circuit("https://backup.test:8443").State);
    }

    [Fact]
    public async Task Alternate_Failing_FallsThroughToDegradedAndCountsAgainstItsCircuit()
    {
        using var harness = new BreakerHarness(o =>
        {
            o.FailureThreshold = 1;
            o.Fallback.AlternateBaseAddress = new Uri("http://backup.test");
            o.Fallback.Degraded.StatusCode = 503;
        });
        harness.Mock.When("http://users.test/*").Respond(HttpStatusCode.InternalServerError);
        harness.Mock.When("http://backup.test/*").Throw(new HttpRequestException("refused"));
        using var client = harness.CreateClient();
        (await client.GetAsync(Users)).Dispose();

        using var response = await client.GetAsync(Users);

        Assert.Equal(["degraded"], response.Headers.GetValues("X-Circuit-Fallback"));
        Assert.Equal(Users, response.RequestMessage!.RequestUri);
        Assert.Equal(CircuitState.Open, harness.Circuit("http://backup.test:80").State);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Alternate_TimedOutByAResilienceHandlerBelow_FallsThroughToDegradedAndCountsAgainstItsCircuit(bool synchronous)
    {
        using var harness = new BreakerHarness(o =>
        {
            o.FailureThreshold = 1;
            o.Fallback.AlternateBaseAddress = new Uri("http://backup.test");
            o.Fallback.Degraded.StatusCode = 503;
        });
        harness.Mock.When("http://users.test/*").Respond(HttpStatusCode.InternalServerError);
        harness.Mock.When("http://backup.test/*").Throw(new TimeoutRejectedException());
        using var client = harness.CreateClient();
        (await client.GetAsync(Users)).Dispose();

        using var request = new HttpRequestMessage(HttpMethod.Get, Users);
        using var response = synchronous ? client.Send(request) : await client.SendAsync(request);

        Assert.Equal(["degraded"], response.Headers.GetValues("X-Circuit-Fallback"));
        Assert.Equal(CircuitState.Open, harness.Circuit("http://backup.test:80").State);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Alternate_AnsweredWithNoResponseByAFaultyHandlerBelow_FallsThroughToDegraded(bool synchronous)
    {
        // The primary's circuit is open, so the caller's call goes to the alternate; a handler below that returns
        // null there must not surface as a NullReferenceException from the chain, with the rejection never counted.
        using var harness = new BreakerHarness(o =>
        {
            o.FailureThreshold = 1;
            o.Fallback.AlternateBaseAddress = new Uri("http://backup.test");
            o.Fallback.Degraded.StatusCode = 503;
        });
        using var client = new HttpClient(new CircuitBreakerHandler(((CircuitBreakerRegistry)harness.Registry).GetClient(BreakerHarness.ClientName), harness.Time)
        {
            InnerHandler = new AnswerHandler(request => request.RequestUri!.Host == "users.test" ? new HttpResponseMessage(HttpStatusCode.InternalServerError) : null),
        });
        (await client.GetAsync(Users)).Dispose();

        using var request = new HttpRequestMessage(HttpMethod.Get, Users);
        using var response = synchronous ? client.Send(request) : await client.SendAsync(request);

        Assert.Equal(["degraded"], response.Headers.GetValues("X-Circuit-Fallback"));
        Assert.Equal(Users, response.RequestMessage!.RequestUri);
        Assert.Equal(CircuitState.Closed, harness.Circuit("http://backup.test:80").State);
    }

    [Fact]
    public async Task Alternate_AfterItAnswers_PutsTheOriginalRequestUriBack()
    {
        using var harness = AlternateHarness();
        Uri? sentTo = null;
        harness.Mock.When("http://backup.test/*").Respond(request =>
        {
            sentTo = request.RequestUri;
            var answer = Response(HttpStatusCode.OK, "from backup");
            answer.RequestMessage = request; // as SocketsHttpHandler does
            return Task.FromResult(answer);
        });
        using var client = harness.CreateClient();
        (await client.GetAsync(Users)).Dispose();
        using var request = new HttpRequestMessage(HttpMethod.Get, Users);

        using var response = await client.SendAsync(request);

        Assert.Equal(["alternate"], response.Headers.GetValues("X-Circuit-Fallback"));
        Assert.Equal(new Uri("http://backup.test/u/1"), sentTo);
        Assert.Equal(Users, request.RequestUri);
        Assert.Same(request, response.RequestMessage);
    }

    [Fact]
    public async Task Alternate_WhenTheCallerCancelsDuringIt_PutsTheOriginalRequestUriBack()
    {
        using var harness = AlternateHarness();
        var arrived = new TaskCompletionSource();
        var never = new TaskCompletionSource<HttpResponseMessage>(); // MockHttp ends a pending response when its token fires
        harness.Mock.When("http://backup.test/*").Respond(() =>
        {
            arrived.SetResult();
            return never.Task;
        });
        using var client = harness.CreateClient();
        (await client.GetAsync(Users)).Dispose();
        using var request = new HttpRequestMessage(HttpMethod.Get, Users);
        using var cancellation = new CancellationTokenSource();

        var call = client.SendAsync(request, cancellation.Token);
        await arrived.Task.WaitAsync(TimeSpan.FromSeconds(10));
        await cancellation.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => call.WaitAsync(TimeSpan.FromSeconds(10)));

        Assert.Equal(Users, request.RequestUri);
    }

    [Fact]
    public async Task Alternate_ResentByARetryHandlerAboveTheBreaker_GoesThroughThePrimarysCircuitAgain()
    {
        using var harness = new BreakerHarness(
            o =>
            {
                o.FailureThreshold = 1;
                o.Fallback.AlternateBaseAddress = new Uri("http://backup.test");
                o.Hosts["backup.test"] = new CircuitBreakerHostOptions { FailureThreshold = 10 };
            },
            services => services.AddHttpClient(BreakerHarness.ClientName)
                .ConfigureAdditionalHttpMessageHandlers((handlers, _) => handlers.Insert(0, new ResendOn5xxHandler())));
        harness.Mock.When("http://users.test/*").Respond(HttpStatusCode.InternalServerError);
        var backupCalls = 0;
        var backupFailsNext = false;
        harness.Mock.When("http://backup.test/*").Respond(() =>
        {
            backupCalls++;
            var fails = backupFailsNext;
            backupFailsNext = false;
            return Task.FromResult(fails ? new HttpResponseMessage(HttpStatusCode.ServiceUnavailable) : Response(HttpStatusCode.OK, "from backup"));
        });
        using var client = harness.CreateClient();
        (await client.GetAsync(Users)).Dispose(); // opens the primary's circuit (the resend of that 500 meets it open already)
        backupCalls = 0;
        backupFailsNext = true;

        using var response = await client.GetAsync(Users);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(2, backupCalls);
        Assert.Equal(["alternate"], response.Headers.GetValues("X-Circuit-Fallback"));
    }

    [Fact]
    public async Task Alternate_WithARetryAfterOfItsOwn_CarriesOnlyTheBreakersRetryAfter()
    {
        using var harness = AlternateHarness();
        harness.Mock.When("http://backup.test/*").Respond(() =>
            Task.FromResult(Response(HttpStatusCode.TooManyRequests, "slow down", ("Retry-After", "120"))));
        using var client = harness.CreateClient();
        (await client.GetAsync(Users)).Dispose();

        using var response = await client.GetAsync(Users);

        Assert.Equal(["alternate"], response.Headers.GetValues("X-Circuit-Fallback"));
        Assert.Equal(["30"], response.Headers.NonValidated["Retry-After"]);
    }

    [Fact]
    public async Task Degraded_WithAConfiguredRetryAfter_CarriesTheBreakersWhenItHasOne_AndTheConfiguredOneOtherwise()
    {
        var (harness, client) = await OpenAsync(o =>
        {
            o.Fallback.Degraded.StatusCode = 503;
            o.Fallback.Degraded.Headers["Retry-After"] = "120";
        });
        using var _ = harness;
        using var __ = client;

        using (var open = await client.GetAsync(Users))
        {
            Assert.Equal(["30"], open.Headers.NonValidated["Retry-After"]); // the break's time, not the configured one too
        }

        harness.Registry.Isolate(new CircuitKey(BreakerHarness.ClientName, "http://users.test:80"));
        using var isolated = await client.GetAsync(Users);

        Assert.Equal(["degraded"], isolated.Headers.GetValues("X-Circuit-Fallback"));
        Assert.Equal(["120"], isolated.Headers.NonValidated["Retry-After"]); // no probe is due: the configured one
    }

    [Fact]
    public async Task Custom_WithARetryAfterOfItsOwn_CarriesOnlyTheBreakersRetryAfter()
    {
        var (harness, client) = await OpenAsync(o => o.Fallback.OnOpen = _ =>
            ValueTask.FromResult<HttpResponseMessage?>(Response(HttpStatusCode.OK, "custom", ("Retry-After", "120"))));
        using var _ = harness;
        using var __ = client;

        using var response = await client.GetAsync(Users);

        Assert.Equal(["custom"], response.Headers.GetValues("X-Circuit-Fallback"));
        Assert.Equal(["30"], response.Headers.NonValidated["Retry-After"]);
    }

    [Fact]
    public async Task Custom_ServingTheCachedCopysContentInAResponseOfItsOwn_GivesTheCallerTheCachedBody()
    {
        using var harness = CachedCustomHarness(context => new HttpResponseMessage(HttpStatusCode.OK) { Content = context.CachedResponse!.Content });
        using var client = await CacheThenOpenAsync(harness);

        using var response = await client.GetAsync(Users);

        Assert.Equal(["custom"], response.Headers.GetValues("X-Circuit-Fallback"));
        Assert.Equal("alice", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Custom_ServingAStreamReadFromTheCachedCopy_GivesTheCallerTheCachedBody()
    {
        using var harness = CachedCustomHarness(async context => new HttpResponseMessage(HttpStatusCode.OK)
        {
            Content = new StreamContent(await context.CachedResponse!.Content.ReadAsStreamAsync(context.CancellationToken)),
        });
        using var client = await CacheThenOpenAsync(harness);

        using var response = await client.GetAsync(Users);

        Assert.Equal(["custom"], response.Headers.GetValues("X-Circuit-Fallback"));
        Assert.Equal("alice", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task HalfOpenWithProbeInFlight_TurnedAwayCallsGetTheFallback()
    {
        using var harness = new BreakerHarness(o =>
        {
            o.FailureThreshold = 1;
            o.Fallback.Degraded.StatusCode = 503;
        });
        var probe = new TaskCompletionSource<HttpResponseMessage>();
        var calls = 0;
        harness.Mock.When("*").Respond(() => ++calls == 1 ? Task.FromResult(new HttpResponseMessage(HttpStatusCode.InternalServerError)) : probe.Task);
        using var client = harness.CreateClient();
        (await client.GetAsync(Users)).Dispose();
        harness.Time.Advance(TimeSpan.FromSeconds(30));

        var probing = client.GetAsync(Users);
        using var turnedAway = await client.GetAsync(Users);
        probe.SetResult(new HttpResponseMessage(HttpStatusCode.OK));
        (await probing).Dispose();

        Assert.Equal(["degraded"], turnedAway.Headers.GetValues("X-Circuit-Fallback"));
        Assert.Null(turnedAway.Headers.RetryAfter); // no time can be promised while a probe is out
    }

    [Fact]
    public void SynchronousSend_UsesCacheAndDegraded()
    {
        using var harness = new BreakerHarness(o =>
        {
            o.FailureThreshold = 1;
            o.Fallback.Cache.Enabled = true;
            o.Fallback.Degraded.StatusCode = 503;
        });
        var status = HttpStatusCode.OK;
        harness.Mock.When("*").Respond(() => Task.FromResult(Response(status, "alice")));
        using var client = harness.CreateClient();
        using (var first = new HttpRequestMessage(HttpMethod.Get, Users))
        using (var ok = client.Send(first))
        {
            Assert.Equal("alice", new StreamReader(ok.Content.ReadAsStream()).ReadToEnd());
        }

        status = HttpStatusCode.InternalServerError;
        using (var failing = new HttpRequestMessage(HttpMethod.Get, Users))
        {
            client.Send(failing).Dispose();
        }

        using var cachedRequest = new HttpRequestMessage(HttpMethod.Get, Users);
        using var cached = client.Send(cachedRequest);
        using var otherRequest = new HttpRequestMessage(HttpMethod.Get, "http://users.test/other");
        using var degraded = client.Send(otherRequest);

        Assert.Equal(["cache"], cached.Headers.GetValues("X-Circuit-Fallback"));
        Assert.Equal(["degraded"], degraded.Headers.GetValues("X-Circuit-Fallback"));
    }

    [Fact]
    public async Task Alternate_WhoseBulkheadIsFull_IsNotSent_AndTheChainGoesOnToDegraded()
    {
        using var harness = new BreakerHarness(o =>
        {
            o.FailureThreshold = 1;
            o.Fallback.AlternateBaseAddress = new Uri("http://backup.test");
            o.Fallback.Degraded.StatusCode = 503;
            o.Hosts["backup.test"] = new CircuitBreakerHostOptions { MaxConcurrentRequests = 1 };
        });
        using var meters = new BreakerInstruments(harness.Services);
        var arrived = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        harness.Mock.When("http://users.test/*").Respond(HttpStatusCode.InternalServerError);
        var backup = harness.Mock.When("http://backup.test/*");
        backup.Respond(async () =>
        {
            arrived.TrySetResult();
            await release.Task;
            return Response(HttpStatusCode.OK, "from backup");
        });
        using var client = harness.CreateClient();
        (await client.GetAsync(Users)).Dispose();

        var first = client.GetAsync(Users); // holds the backup's one slot
        await arrived.Task.WaitAsync(TimeSpan.FromSeconds(10));
        using var second = await client.GetAsync(Users).WaitAsync(TimeSpan.FromSeconds(10));
        release.SetResult();
        using var fromBackup = await first;

        Assert.Equal(["degraded"], second.Headers.GetValues("X-Circuit-Fallback"));
        Assert.Equal(Users, second.RequestMessage!.RequestUri);
        Assert.Equal(["alternate"], fromBackup.Headers.GetValues("X-Circuit-Fallback"));
        Assert.Equal(1, harness.Mock.GetMatchCount(backup));
        Assert.Equal(CircuitState.Closed, harness.Circuit("http://backup.test:80").State); // shed is not the host's fault
        Assert.Contains(meters.Rejected.GetMeasurementSnapshot(), m => Equals(m.Tags["server.address"], "backup.test") && Equals(m.Tags["reason"], "concurrency"));
    }

    [Fact]
    public void SynchronousSend_AlternateWhoseThrottleIsEmpty_IsNotSent_AndTheChainGoesOnToDegraded()
    {
        using var harness = new BreakerHarness(o =>
        {
            o.FailureThreshold = 1;
            o.Fallback.AlternateBaseAddress = new Uri("http://backup.test");
            o.Fallback.Degraded.StatusCode = 503;
            // One call, then the next token in about 17 minutes (the throttle reads the system clock).
            o.Hosts["backup.test"] = new CircuitBreakerHostOptions { Throttle = { PermitsPerSecond = 0.001, Burst = 1 } };
        });
        harness.Mock.When("http://users.test/*").Respond(HttpStatusCode.InternalServerError);
        var backup = harness.Mock.When("http://backup.test/*");
        backup.Respond(() => Task.FromResult(Response(HttpStatusCode.OK, "from backup")));
        using var client = harness.CreateClient();
        using (var failing = new HttpRequestMessage(HttpMethod.Get, Users))
        {
            client.Send(failing).Dispose();
        }

        using var first = new HttpRequestMessage(HttpMethod.Get, Users);
        using var fromBackup = client.Send(first);
        using var second = new HttpRequestMessage(HttpMethod.Get, Users);
        using var degraded = client.Send(second);

        Assert.Equal(["alternate"], fromBackup.Headers.GetValues("X-Circuit-Fallback"));
        Assert.Equal(["degraded"], degraded.Headers.GetValues("X-Circuit-Fallback"));
        Assert.Equal(Users, degraded.RequestMessage!.RequestUri);
        Assert.Equal(1, harness.Mock.GetMatchCount(backup));
    }

    [Fact]
    public void SynchronousSend_UsesTheAlternate_AndFallsThroughToDegradedWhenItFails()
    {
        using var harness = new BreakerHarness(o =>
        {
            o.FailureThreshold = 1;
            o.Fallback.AlternateBaseAddress = new Uri("http://backup.test");
            o.Fallback.Degraded.StatusCode = 503;
        });
        harness.Mock.When("http://users.test/*").Respond(HttpStatusCode.InternalServerError);
        var backupFails = false;
        harness.Mock.When("http://backup.test/*").Respond(() => backupFails
            ? throw new HttpRequestException("refused")
            : Task.FromResult(Response(HttpStatusCode.OK, "from backup")));
        using var client = harness.CreateClient();
        using (var failing = new HttpRequestMessage(HttpMethod.Get, Users))
        {
            client.Send(failing).Dispose();
        }

        using var first = new HttpRequestMessage(HttpMethod.Get, Users);
        using var fromBackup = client.Send(first);
        backupFails = true;
        using var second = new HttpRequestMessage(HttpMethod.Get, Users);
        using var degraded = client.Send(second);

        Assert.Equal("from backup", new StreamReader(fromBackup.Content.ReadAsStream()).ReadToEnd());
        Assert.Equal(["alternate"], fromBackup.Headers.GetValues("X-Circuit-Fallback"));
        Assert.Equal(["degraded"], degraded.Headers.GetValues("X-Circuit-Fallback"));
        Assert.Equal(Users, degraded.RequestMessage!.RequestUri);
        Assert.Equal(CircuitState.Open, harness.Circuit("http://backup.test:80").State);
    }

    [Fact]
    public void SynchronousSend_AfterTheAlternateAnswers_PutsTheOriginalRequestUriBack()
    {
        using var harness = AlternateHarness();
        Uri? sentTo = null;
        harness.Mock.When("http://backup.test/*").Respond(request =>
        {
            sentTo = request.RequestUri;
            return Task.FromResult(Response(HttpStatusCode.OK, "from backup"));
        });
        using var client = harness.CreateClient();
        using (var failing = new HttpRequestMessage(HttpMethod.Get, Users))
        {
            client.Send(failing).Dispose();
        }

        using var request = new HttpRequestMessage(HttpMethod.Get, Users);
        using var response = client.Send(request);

        Assert.Equal(["alternate"], response.Headers.GetValues("X-Circuit-Fallback"));
        Assert.Equal(new Uri("http://backup.test/u/1"), sentTo);
        Assert.Equal(Users, request.RequestUri);
    }

    [Fact]
    public void SynchronousSend_WhenTheAlternateThrowsAFaultThatIsNotTheHosts_PutsTheOriginalRequestUriBack()
    {
        using var harness = AlternateHarness();
        harness.Mock.When("http://backup.test/*").Throw(new InvalidOperationException("a bug below the breaker"));
        using var client = harness.CreateClient();
        using (var failing = new HttpRequestMessage(HttpMethod.Get, Users))
        {
            client.Send(failing).Dispose();
        }

        using var request = new HttpRequestMessage(HttpMethod.Get, Users);
        Assert.Throws<InvalidOperationException>(() => client.Send(request));

        Assert.Equal(Users, request.RequestUri);
    }

    [Fact]
    public async Task HostOverride_ChangesOnlyThatHostsFallback()
    {
        using var harness = new BreakerHarness(o =>
        {
            o.FailureThreshold = 1;
            o.Fallback.Degraded.StatusCode = 503;
            o.Fallback.Degraded.Headers["X-Degraded"] = "client";
            o.Hosts["orders.test"] = new CircuitBreakerHostOptions();
            o.Hosts["orders.test"].Fallback.Degraded.StatusCode = 200;
            o.Hosts["orders.test"].Fallback.Degraded.Headers["X-Host"] = "orders";
        });
        harness.Mock.When("*").Respond(HttpStatusCode.InternalServerError);
        using var client = harness.CreateClient();
        (await client.GetAsync(Users)).Dispose();
        (await client.GetAsync(new Uri("http://orders.test/"))).Dispose();

        using var users = await client.GetAsync(Users);
        using var orders = await client.GetAsync(new Uri("http://orders.test/"));

        Assert.Equal(HttpStatusCode.ServiceUnavailable, users.StatusCode);
        Assert.False(users.Headers.Contains("X-Host"));
        Assert.Equal(HttpStatusCode.OK, orders.StatusCode);
        Assert.Equal(["client"], orders.Headers.GetValues("X-Degraded"));
        Assert.Equal(["orders"], orders.Headers.GetValues("X-Host"));
    }

    /// <summary>A primary that answers 500 and opens at once, with <c>http://backup.test</c> as its alternate, whose answers the test sets.</summary>
    private static BreakerHarness AlternateHarness()
    {
        var harness = new BreakerHarness(o =>
        {
            o.FailureThreshold = 1;
            o.Fallback.AlternateBaseAddress = new Uri("http://backup.test");
        });
        harness.Mock.When("http://users.test/*").Respond(HttpStatusCode.InternalServerError);
        return harness;
    }

    private static BreakerHarness CachedCustomHarness(Func<CircuitFallbackContext, ValueTask<HttpResponseMessage?>> onOpen) =>
        new(o =>
        {
            o.FailureThreshold = 1;
            o.Fallback.Cache.Enabled = true;
            o.Fallback.OnOpen = onOpen;
        });

    private static BreakerHarness CachedCustomHarness(Func<CircuitFallbackContext, HttpResponseMessage?> onOpen) =>
        CachedCustomHarness(context => ValueTask.FromResult(onOpen(context)));

    /// <summary>Caches <c>alice</c> for <see cref="Users"/>, then opens the circuit with a 500.</summary>
    private static async Task<HttpClient> CacheThenOpenAsync(BreakerHarness harness)
    {
        var status = HttpStatusCode.OK;
        harness.Mock.When("*").Respond(() => Task.FromResult(Response(status, "alice")));
        var client = harness.CreateClient();
        Assert.Equal("alice", await client.GetStringAsync(Users));
        status = HttpStatusCode.InternalServerError;
        (await client.GetAsync(Users)).Dispose();
        return client;
    }

    private static async Task<(BreakerHarness Harness, HttpClient Client)> OpenAsync(Action<CircuitBreakerOptions> configure)
    {
        var harness = new BreakerHarness(o =>
        {
            o.FailureThreshold = 1;
            configure(o);
        });
        harness.Mock.When("*").Respond(HttpStatusCode.InternalServerError);
        var client = harness.CreateClient();
        (await client.GetAsync(Users)).Dispose();
        Assert.Equal(CircuitState.Open, harness.Circuit("http://users.test:80").State);
        return (harness, client);
    }

    private static HttpResponseMessage Response(HttpStatusCode status, string body, params (string Name, string Value)[] headers)
    {
        var response = new HttpResponseMessage(status) { Content = new StringContent(body, new MediaTypeHeaderValue("text/plain")) };
        foreach (var (name, value) in headers)
        {
            response.Headers.TryAddWithoutValidation(name, value);
        }

        return response;
    }

    /// <summary>A handler above the breaker that adds a header to every response, as a correlation or timing handler does.</summary>
    private sealed class AddResponseHeaderHandler(string name, string value) : DelegatingHandler
    {
        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var response = await base.SendAsync(request, cancellationToken);
            response.Headers.TryAddWithoutValidation(name, value);
            return response;
        }
    }

    /// <summary>Answers every request at once, on both paths, with what <paramref name="answer"/> gives, null included.</summary>
    private sealed class AnswerHandler(Func<HttpRequestMessage, HttpResponseMessage?> answer) : HttpMessageHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) => Task.FromResult(answer(request)!);

        protected override HttpResponseMessage Send(HttpRequestMessage request, CancellationToken cancellationToken) => answer(request)!;
    }
}
