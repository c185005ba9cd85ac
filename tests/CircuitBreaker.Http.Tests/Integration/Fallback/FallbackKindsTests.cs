using System.Net;
using CircuitBreaker.Http.Tests.TestSupport;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using static CircuitBreaker.Http.Tests.Integration.Fallback.FallbackSupport;

namespace CircuitBreaker.Http.Tests.Integration.Fallback;

/// <summary>Each kind of fallback, configured from appsettings.json (custom: in code on top of it), while the circuit is open.</summary>
public class FallbackKindsTests
{
    private const string CacheConfig = """
        {
          "CircuitBreaker": {
            "FailureThreshold": 1,
            "BreakDuration": "00:01:00",
            "Fallback": { "Cache": { "Enabled": true } }
          }
        }
        """;

    private const string DegradedConfig = """
        {
          "CircuitBreaker": {
            "FailureThreshold": 1,
            "BreakDuration": "00:01:00",
            "Fallback": {
              "Degraded": {
                "StatusCode": 203,
                "ContentType": "application/json",
                "Body": "{\"user\":null,\"fallback\":true}",
                "Headers": { "X-Degraded": "1", "Content-Language": "en" }
              }
            }
          }
        }
        """;

    [Fact]
    public async Task Cache_WhileOpen_ReplaysTheLastGoodResponse_WithCacheAgeAndRetryAfterHeaders_WithoutCallingTheServer()
    {
        await using var server = await KestrelDownstream.StartAsync();
        using var side = ClientSide.ForClient(JsonConfiguration.From(CacheConfig), server);
        using var client = side.CreateClient();
        server.Behavior = context =>
        {
            context.Response.StatusCode = 200;
            context.Response.Headers.ETag = "\"v7\"";
            context.Response.Headers["X-Version"] = "7";
            context.Response.Headers.ContentLanguage = "fr";
            context.Response.ContentType = "application/json; charset=utf-8";
            return context.Response.WriteAsync("""{"id":1,"name":"Ada"}""", context.RequestAborted);
        };
        using (var original = await client.GetAsync("users/1?expand=roles"))
        {
            Assert.Equal("""{"id":1,"name":"Ada"}""", await original.Content.ReadAsStringAsync());
        }

        await OpenAsync(side, client, server);
        side.Time.Advance(TimeSpan.FromSeconds(12));
        var calls = server.RequestCount;

        using var replayed = await client.GetAsync("users/1?expand=roles");

        Assert.Equal(HttpStatusCode.OK, replayed.StatusCode);
        Assert.Equal("""{"id":1,"name":"Ada"}""", await replayed.Content.ReadAsStringAsync());
        Assert.Equal("application/json; charset=utf-8", replayed.Content.Headers.ContentType?.ToString());
        Assert.Equal("fr", Header(replayed, "Content-Language"));
        Assert.Equal("\"v7\"", replayed.Headers.ETag?.ToString());
        Assert.Equal("7", Header(replayed, "X-Version"));
        Assert.Equal("cache", Header(replayed, FallbackHeader));
        Assert.Equal(TimeSpan.FromSeconds(12), replayed.Headers.Age);
        Assert.Equal(TimeSpan.FromSeconds(48), replayed.Headers.RetryAfter?.Delta);
        Assert.Equal(calls, server.RequestCount);
        Assert.Equal(CircuitState.Open, side.Circuit("users", server).State);
    }

    [Fact]
    public async Task Cache_WhileOpen_ForAUrlNeverFetched_ThrowsCircuitOpenException()
    {
        await using var server = await KestrelDownstream.StartAsync();
        using var side = ClientSide.ForClient(JsonConfiguration.From(CacheConfig), server);
        using var client = side.CreateClient();
        Assert.Equal("ok", await FetchAsync(client, "users/1"));
        await OpenAsync(side, client, server);

        // Another path, and the same path with another query, are other URLs.
        var open = await Assert.ThrowsAsync<CircuitOpenException>(() => client.GetAsync("users/2"));
        await Assert.ThrowsAsync<CircuitOpenException>(() => client.GetAsync("users/1?page=2"));

        Assert.Equal(new CircuitKey("users", server.Authority), open.CircuitKey);
        Assert.Equal(TimeSpan.FromSeconds(60), open.RetryAfter);
    }

    [Fact]
    public async Task Cache_WhenTheEntryIsOlderThanMaxAge_IsNotReplayed()
    {
        await using var server = await KestrelDownstream.StartAsync();
        using var side = ClientSide.ForClient(
            JsonConfiguration.From("""
                {
                  "CircuitBreaker": {
                    "FailureThreshold": 1,
                    "BreakDuration": "00:10:00",
                    "Fallback": { "Cache": { "Enabled": true, "MaxAge": "00:01:00" } }
                  }
                }
                """),
            server);
        using var client = side.CreateClient();
        Assert.Equal("ok", await FetchAsync(client, "users/1"));
        await OpenAsync(side, client, server);

        side.Time.Advance(TimeSpan.FromSeconds(60));
        using (var stillFresh = await client.GetAsync("users/1"))
        {
            Assert.Equal("cache", Header(stillFresh, FallbackHeader));
            Assert.Equal(TimeSpan.FromSeconds(60), stillFresh.Headers.Age);
        }

        side.Time.Advance(TimeSpan.FromSeconds(1));
        await Assert.ThrowsAsync<CircuitOpenException>(() => client.GetAsync("users/1"));
    }

    [Fact]
    public async Task Degraded_FromJson_WhileOpen_ReturnsExactlyTheConfiguredResponse()
    {
        await using var server = await KestrelDownstream.StartAsync();
        using var side = ClientSide.ForClient(JsonConfiguration.From(DegradedConfig), server);
        using var client = side.CreateClient();
        await OpenAsync(side, client, server);
        side.Time.Advance(TimeSpan.FromSeconds(20.5));
        var calls = server.RequestCount;

        using var degraded = await client.GetAsync("users/1");

        Assert.Equal((HttpStatusCode)203, degraded.StatusCode);
        Assert.Equal("""{"user":null,"fallback":true}""", await degraded.Content.ReadAsStringAsync());
        Assert.Equal("application/json", degraded.Content.Headers.ContentType?.ToString());
        Assert.Equal("1", Header(degraded, "X-Degraded"));
        Assert.Equal("en", Header(degraded, "Content-Language"));
        Assert.Equal("degraded", Header(degraded, FallbackHeader));
        Assert.Equal(TimeSpan.FromSeconds(40), degraded.Headers.RetryAfter?.Delta); // 39.5 s, rounded up
        Assert.Null(degraded.Headers.Age);
        Assert.Equal(calls, server.RequestCount);
    }

    [Fact]
    public async Task Degraded_WithOnlyABody_Is503_AndServesEveryMethod()
    {
        await using var server = await KestrelDownstream.StartAsync();
        using var side = ClientSide.ForClient(
            JsonConfiguration.From("""
                {
                  "CircuitBreaker": {
                    "FailureThreshold": 1,
                    "Fallback": { "Degraded": { "ContentType": "text/plain", "Body": "try later" } }
                  }
                }
                """),
            server);
        using var client = side.CreateClient();
        await OpenAsync(side, client, server);

        using var content = new StringContent("{}");
        using var degraded = await client.PostAsync("users", content);

        Assert.Equal(HttpStatusCode.ServiceUnavailable, degraded.StatusCode);
        Assert.Equal("try later", await degraded.Content.ReadAsStringAsync());
        Assert.Equal("degraded", Header(degraded, FallbackHeader));
    }

    [Fact]
    public async Task Alternate_WhileOpen_ResendsTheRequestToTheAlternateWithTheSamePathAndQuery()
    {
        await using var primary = await KestrelDownstream.StartAsync();
        await using var backup = await KestrelDownstream.StartAsync();
        using var side = ClientSide.ForClient(JsonConfiguration.From(AlternateConfig(backup)), primary);
        using var client = side.CreateClient();
        var seen = new List<string>();
        backup.Behavior = OkFrom(r =>
        {
            lock (seen)
            {
                seen.Add($"{r.Method} {r.Path}{r.QueryString} {r.Headers["X-Trace"]}");
            }

            return "from backup";
        });
        await OpenAsync(side, client, primary);
        side.Time.Advance(TimeSpan.FromSeconds(10));
        var primaryCalls = primary.RequestCount;

        using var response = await GetAsync(client, "users/42?expand=roles&q=a%20b", ("X-Trace", "t-1"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("from backup", await response.Content.ReadAsStringAsync());
        Assert.Equal("alternate", Header(response, FallbackHeader));
        Assert.Equal(TimeSpan.FromSeconds(50), response.Headers.RetryAfter?.Delta);
        Assert.Equal(["GET /users/42?expand=roles&q=a%20b t-1"], seen);
        Assert.Equal(primaryCalls, primary.RequestCount);
        Assert.Equal(CircuitState.Closed, side.Circuit("users", backup).State);
        Assert.Equal(CircuitState.Open, side.Circuit("users", primary).State);
    }

    [Fact]
    public async Task Alternate_AfterItAnswers_TheCallersRequestAndTheResponsesRequestMessageShowThePrimaryAddressAgain()
    {
        await using var primary = await KestrelDownstream.StartAsync();
        await using var backup = await KestrelDownstream.StartAsync();
        using var side = ClientSide.ForClient(JsonConfiguration.From(AlternateConfig(backup)), primary);
        using var client = side.CreateClient();
        backup.Behavior = Ok("from backup");
        await OpenAsync(side, client, primary);
        using var request = Get("users/42?q=1");

        using var response = await client.SendAsync(request);

        Assert.Equal("from backup", await response.Content.ReadAsStringAsync());
        Assert.Equal("alternate", Header(response, FallbackHeader));
        Assert.Equal(1, backup.RequestCount);
        Assert.Equal(new Uri(primary.BaseAddress, "users/42?q=1"), request.RequestUri);
        Assert.Same(request, response.RequestMessage);
    }

    [Fact]
    public async Task Alternate_HasACircuitOfItsOwn_ThatOpensOnItsFailuresAndThenIsNoLongerCalled()
    {
        await using var primary = await KestrelDownstream.StartAsync();
        await using var backup = await KestrelDownstream.StartAsync();
        using var side = ClientSide.ForClient(JsonConfiguration.From(AlternateConfig(backup)), primary);
        using var client = side.CreateClient();
        await OpenAsync(side, client, primary);
        backup.RespondWith(500, "backup broken");

        // The alternate's answer goes back as it is, and counts against the alternate's circuit.
        using (var first = await client.GetAsync("users/1"))
        {
            Assert.Equal(HttpStatusCode.InternalServerError, first.StatusCode);
            Assert.Equal("alternate", Header(first, FallbackHeader));
        }

        Assert.Equal(CircuitState.Open, side.Circuit("users", backup).State);
        var open = await Assert.ThrowsAsync<CircuitOpenException>(() => client.GetAsync("users/1"));

        Assert.Equal(new CircuitKey("users", primary.Authority), open.CircuitKey);
        Assert.Equal(1, backup.RequestCount);
    }

    [Fact]
    public async Task Alternate_WhenTheAlternateIsDownToo_FallsThroughToDegraded()
    {
        await using var primary = await KestrelDownstream.StartAsync();
        await using var backup = await KestrelDownstream.StartAsync();
        using var side = ClientSide.ForClient(JsonConfiguration.From(AlternateConfig(backup, degradedBody: "degraded!")), primary);
        using var client = side.CreateClient();
        await OpenAsync(side, client, primary);
        await backup.StopAsync();

        using (var first = await client.GetAsync("users/1"))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, first.StatusCode);
            Assert.Equal("degraded!", await first.Content.ReadAsStringAsync());
            Assert.Equal("degraded", Header(first, FallbackHeader));
            Assert.Equal(primary.BaseAddress.Authority, first.RequestMessage?.RequestUri?.Authority);
        }

        // The refused connection opened the alternate's own circuit: the next call goes straight to degraded.
        Assert.Equal(CircuitState.Open, side.Circuit("users", backup).State);
        using var second = await client.GetAsync("users/1");
        Assert.Equal("degraded", Header(second, FallbackHeader));
    }

    [Fact]
    public async Task Alternate_WhenTheAlternateIsDownAndNoDegradedIsSet_ThrowsCircuitOpenExceptionOfThePrimary()
    {
        await using var primary = await KestrelDownstream.StartAsync();
        await using var backup = await KestrelDownstream.StartAsync();
        using var side = ClientSide.ForClient(JsonConfiguration.From(AlternateConfig(backup)), primary);
        using var client = side.CreateClient();
        await OpenAsync(side, client, primary);
        await backup.StopAsync();

        var open = await Assert.ThrowsAsync<CircuitOpenException>(() => client.GetAsync("users/1"));

        Assert.Equal(new CircuitKey("users", primary.Authority), open.CircuitKey);
        Assert.Equal(CircuitState.Open, open.State);
        Assert.Equal(CircuitState.Open, side.Circuit("users", backup).State);
    }

    [Fact]
    public async Task Alternate_GivenRequestContentThatCannotBeSentAgain_GoesOnDownTheChain_WithoutCountingAgainstTheAlternate()
    {
        await using var primary = await KestrelDownstream.StartAsync();
        await using var backup = await KestrelDownstream.StartAsync();
        using var side = ClientSide.Create(
            JsonConfiguration.From(AlternateConfig(backup, degradedBody: "degraded!")),
            s => s.AddHttpClient("users", c => c.BaseAddress = primary.BaseAddress).AddHttpMessageHandler(() => new ResendOn5xxHandler()).AddCircuitBreaker());
        using var client = side.CreateClient();
        primary.RespondWith(503, "busy");

        // The 503 opens the primary's circuit; the retry above the breaker re-sends the upload, which goes to the
        // alternate with a body the first attempt has already read, and never leaves the process.
        using var upload = new StreamContent(new ForwardOnlyStream("payload"u8.ToArray()));
        using var response = await client.PostAsync("upload", upload);

        Assert.Equal("degraded", Header(response, FallbackHeader));
        Assert.Equal(1, primary.RequestCount);
        Assert.Equal(0, backup.RequestCount);
        var alternate = side.Circuit("users", backup);
        Assert.Equal(0, alternate.ConsecutiveFailures);
        Assert.Equal(CircuitState.Closed, alternate.State);
    }

    [Fact]
    public async Task Custom_SetWithServicesConfigureOnTopOfJson_AnswersWhileOpen_AndIsToldAboutTheCircuit()
    {
        await using var server = await KestrelDownstream.StartAsync();
        CircuitFallbackContext? seen = null;
        using var side = ClientSide.Create(JsonConfiguration.From(DegradedConfig), services =>
        {
            services.AddHttpClient("users", c => c.BaseAddress = server.BaseAddress).AddCircuitBreaker();
            services.Configure<CircuitBreakerOptions>("users", o => o.Fallback.OnOpen = context =>
            {
                seen = context;
                return ValueTask.FromResult<HttpResponseMessage?>(new HttpResponseMessage(HttpStatusCode.Accepted) { Content = new StringContent("custom answer") });
            });
        });
        using var client = side.CreateClient();
        await OpenAsync(side, client, server); // FailureThreshold 1 comes from the JSON
        side.Time.Advance(TimeSpan.FromSeconds(15));

        using var response = await client.GetAsync("users/1?x=1");

        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        Assert.Equal("custom answer", await response.Content.ReadAsStringAsync());
        Assert.Equal("custom", Header(response, FallbackHeader));
        Assert.Equal(TimeSpan.FromSeconds(45), response.Headers.RetryAfter?.Delta);
        Assert.NotNull(seen);
        Assert.Equal(new CircuitKey("users", server.Authority), seen.CircuitKey);
        Assert.Equal(CircuitState.Open, seen.State);
        Assert.Equal(TimeSpan.FromSeconds(45), seen.RetryAfter);
        Assert.Equal(new Uri(server.BaseAddress, "users/1?x=1"), seen.Request.RequestUri);
        Assert.Null(seen.CachedResponse);
    }

    [Fact]
    public async Task Custom_SetWithAddCircuitBreakerDelegateOnTopOfJson_ReceivesTheCachedResponse_AndCanServeIt()
    {
        await using var server = await KestrelDownstream.StartAsync();
        var cachedBodies = new List<string?>();
        using var side = ClientSide.Create(JsonConfiguration.From(CacheConfig), services =>
            services.AddHttpClient("users", c => c.BaseAddress = server.BaseAddress)
                .AddCircuitBreaker()
                .AddCircuitBreaker(o => o.Fallback.OnOpen = async context =>
                {
                    cachedBodies.Add(context.CachedResponse is { } cached ? await cached.Content.ReadAsStringAsync(context.CancellationToken) : null);
                    return context.CachedResponse;
                }));
        using var client = side.CreateClient();
        server.Behavior = Ok("user 1", ("X-Version", "3"));
        Assert.Equal("user 1", await FetchAsync(client, "users/1"));
        await OpenAsync(side, client, server);
        side.Time.Advance(TimeSpan.FromSeconds(5));

        using var served = await client.GetAsync("users/1");
        var notCached = await Assert.ThrowsAsync<CircuitOpenException>(() => client.GetAsync("users/2"));

        Assert.Equal("custom", Header(served, FallbackHeader));
        Assert.Equal("user 1", await served.Content.ReadAsStringAsync());
        Assert.Equal("3", Header(served, "X-Version"));
        Assert.Equal(TimeSpan.FromSeconds(5), served.Headers.Age);
        Assert.Equal(["user 1", null], cachedBodies);
        Assert.Equal(CircuitState.Open, notCached.State);
    }

    [Fact]
    public async Task Custom_ReturningNull_GoesOnDownTheChain()
    {
        await using var server = await KestrelDownstream.StartAsync();
        var calls = 0;
        using var side = ClientSide.Create(JsonConfiguration.From(DegradedConfig), services =>
        {
            services.AddHttpClient("users", c => c.BaseAddress = server.BaseAddress).AddCircuitBreaker();
            services.Configure<CircuitBreakerOptions>("users", o => o.Fallback.OnOpen = _ =>
            {
                Interlocked.Increment(ref calls);
                return ValueTask.FromResult<HttpResponseMessage?>(null);
            });
        });
        using var client = side.CreateClient();
        await OpenAsync(side, client, server);

        using var response = await client.GetAsync("users/1");

        Assert.Equal(1, calls);
        Assert.Equal("degraded", Header(response, FallbackHeader));
        Assert.Equal("""{"user":null,"fallback":true}""", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Custom_ThatThrows_IsLoggedAndSkipped()
    {
        await using var server = await KestrelDownstream.StartAsync();
        using var side = ClientSide.Create(JsonConfiguration.From(DegradedConfig), services =>
        {
            services.AddHttpClient("users", c => c.BaseAddress = server.BaseAddress).AddCircuitBreaker();
            services.Configure<CircuitBreakerOptions>("users", o => o.Fallback.OnOpen = _ => throw new InvalidOperationException("custom broke"));
        });
        using var client = side.CreateClient();
        await OpenAsync(side, client, server);

        using var response = await client.GetAsync("users/1");

        Assert.Equal("degraded", Header(response, FallbackHeader));
        var warning = Assert.Single(side.Logs.GetSnapshot(), r => r.Id.Name == "CircuitFallbackFailed");
        Assert.Equal(LogLevel.Warning, warning.Level);
        Assert.Equal("custom broke", warning.Exception?.Message);
        Assert.Contains("custom", warning.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Cache_EachReplay_IsAFreshResponseMessage_AndDisposingOneLeavesTheOtherReadable()
    {
        await using var server = await KestrelDownstream.StartAsync();
        using var side = ClientSide.ForClient(JsonConfiguration.From(CacheConfig), server);
        using var client = side.CreateClient();
        server.Behavior = Ok("the body", ("X-Version", "9"));
        Assert.Equal("the body", await FetchAsync(client, "users/1"));
        await OpenAsync(side, client, server);

        var first = await client.GetAsync("users/1", HttpCompletionOption.ResponseHeadersRead);
        using var second = await client.GetAsync("users/1", HttpCompletionOption.ResponseHeadersRead);
        Assert.NotSame(first, second);
        Assert.NotSame(first.Content, second.Content);
        Assert.Equal("the body", await first.Content.ReadAsStringAsync());
        first.Headers.Remove("X-Version");
        first.Dispose();

        Assert.Equal("cache", Header(second, FallbackHeader));
        Assert.Equal("9", Header(second, "X-Version"));
        Assert.Equal("the body", await second.Content.ReadAsStringAsync());
        using var third = await client.GetAsync("users/1");
        Assert.Equal("the body", await third.Content.ReadAsStringAsync());
        Assert.Equal("9", Header(third, "X-Version"));
    }

    private static string AlternateConfig(KestrelDownstream backup, string? degradedBody = null) => $$"""
        {
          "CircuitBreaker": {
            "FailureThreshold": 1,
            "BreakDuration": "00:01:00",
            "Fallback": {
              "AlternateBaseAddress": "{{backup.BaseAddress}}"
              {{(degradedBody is null ? "" : $$""", "Degraded": { "ContentType": "text/plain", "Body": "{{degradedBody}}" }""")}}
            }
          }
        }
        """;
}
