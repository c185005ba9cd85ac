using System.Net;
using System.Net.Http.Headers;
using CircuitBreaker.Http.Tests.TestSupport;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using static CircuitBreaker.Http.Tests.Integration.Fallback.FallbackSupport;

namespace CircuitBreaker.Http.Tests.Integration.Fallback;

/// <summary>The cache replays a response only to a caller allowed to see it, and never stores what it may not replay.</summary>
public class CacheSafetyTests
{
    private const string WithDegraded = """
        {
          "CircuitBreaker": {
            "FailureThreshold": 1,
            "Fallback": {
              "Cache": { "Enabled": true },
              "Degraded": { "StatusCode": 503, "ContentType": "text/plain", "Body": "degraded" }
            }
          }
        }
        """;

    private const string WithoutDegraded = """
        {
          "CircuitBreaker": {
            "FailureThreshold": 1,
            "Fallback": { "Cache": { "Enabled": true } }
          }
        }
        """;

    [Fact]
    public async Task ResponseFetchedWithBearerA_IsReplayedOnlyToBearerA_OthersGetDegraded()
    {
        await using var server = await KestrelDownstream.StartAsync();
        using var side = ClientSide.ForClient(JsonConfiguration.From(WithDegraded), server);
        using var client = side.CreateClient();
        server.Behavior = OkFrom(r => $"secret of {r.Headers.Authorization}");
        Assert.Equal("secret of Bearer A", await FetchAsync(client, "me", ("Authorization", "Bearer A")));
        await OpenAsync(side, client, server);

        using var sameCaller = await GetAsync(client, "me", ("Authorization", "Bearer A"));
        using var otherCaller = await GetAsync(client, "me", ("Authorization", "Bearer B"));
        using var anonymous = await GetAsync(client, "me");
        using var otherScheme = await GetAsync(client, "me", ("Authorization", "Basic A"));

        Assert.Equal("cache", Header(sameCaller, FallbackHeader));
        Assert.Equal("secret of Bearer A", await sameCaller.Content.ReadAsStringAsync());
        foreach (var refused in new[] { otherCaller, anonymous, otherScheme })
        {
            Assert.Equal("degraded", Header(refused, FallbackHeader));
            Assert.Equal("degraded", await refused.Content.ReadAsStringAsync());
        }
    }

    [Fact]
    public async Task ResponseFetchedWithBearerA_WithoutDegraded_OtherCallersGetCircuitOpenException()
    {
        await using var server = await KestrelDownstream.StartAsync();
        using var side = ClientSide.ForClient(JsonConfiguration.From(WithoutDegraded), server);
        using var client = side.CreateClient();
        server.Behavior = OkFrom(r => $"secret of {r.Headers.Authorization}");
        Assert.Equal("secret of Bearer A", await FetchAsync(client, "me", ("Authorization", "Bearer A")));
        await OpenAsync(side, client, server);

        await Assert.ThrowsAsync<CircuitOpenException>(() => GetAsync(client, "me", ("Authorization", "Bearer B")));
        await Assert.ThrowsAsync<CircuitOpenException>(() => GetAsync(client, "me"));
        using var sameCaller = await GetAsync(client, "me", ("Authorization", "Bearer A"));
        Assert.Equal("secret of Bearer A", await sameCaller.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task ResponseFetchedWithDefaultRequestHeadersBearerA_IsNotReplayedToAClientWithBearerB()
    {
        await using var server = await KestrelDownstream.StartAsync();
        using var side = ClientSide.ForClient(JsonConfiguration.From(WithoutDegraded), server);
        using var callerA = side.CreateClient();
        using var callerB = side.CreateClient();
        callerA.DefaultRequestHeaders.Authorization = new("Bearer", "A");
        callerB.DefaultRequestHeaders.Authorization = new("Bearer", "B");
        server.Behavior = OkFrom(r => $"secret of {r.Headers.Authorization}");
        Assert.Equal("secret of Bearer A", await FetchAsync(callerA, "me"));
        await OpenAsync(side, callerA, server);

        await Assert.ThrowsAsync<CircuitOpenException>(() => callerB.GetAsync("me"));
        using var replayed = await callerA.GetAsync("me");
        Assert.Equal("secret of Bearer A", await replayed.Content.ReadAsStringAsync());
    }

    /// <remarks>
    /// A caller that sets <c>Host</c> (a proxy, a multi-tenant service calling one gateway by address) is sent that host,
    /// not the URI's: the same URI then names one resource per virtual host, and another tenant's answer.
    /// </remarks>
    [Fact]
    public async Task ResponseFetchedWithHostHeaderA_IsNotReplayedToARequestForHostB()
    {
        await using var server = await KestrelDownstream.StartAsync();
        using var side = ClientSide.ForClient(JsonConfiguration.From(WithDegraded), server);
        using var client = side.CreateClient();
        server.Behavior = OkFrom(r => $"home of {r.Host.Host}");
        Assert.Equal("home of tenant-a.example", await FetchAsync(client, "home", ("Host", "tenant-a.example")));
        await OpenAsync(side, client, server);

        using var sameHost = await GetAsync(client, "home", ("Host", "tenant-a.example"));
        using var otherHost = await GetAsync(client, "home", ("Host", "tenant-b.example"));
        using var uriHost = await GetAsync(client, "home");

        Assert.Equal("cache", Header(sameHost, FallbackHeader));
        Assert.Equal("home of tenant-a.example", await sameHost.Content.ReadAsStringAsync());
        Assert.Equal("degraded", await otherHost.Content.ReadAsStringAsync());
        Assert.Equal("degraded", await uriHost.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task AnonymousResponse_IsNotReplayedToACallerWithCredentials()
    {
        await using var server = await KestrelDownstream.StartAsync();
        using var side = ClientSide.ForClient(JsonConfiguration.From(WithoutDegraded), server);
        using var client = side.CreateClient();
        Assert.Equal("ok", await FetchAsync(client, "public"));
        await OpenAsync(side, client, server);

        await Assert.ThrowsAsync<CircuitOpenException>(() => GetAsync(client, "public", ("Authorization", "Bearer A")));
        await Assert.ThrowsAsync<CircuitOpenException>(() => GetAsync(client, "public", ("Cookie", "session=A")));
        using var anonymous = await GetAsync(client, "public");
        Assert.Equal("cache", Header(anonymous, FallbackHeader));
    }

    [Fact]
    public async Task ResponseFetchedWithCookieA_IsReplayedOnlyToCookieA_OthersGetDegraded()
    {
        await using var server = await KestrelDownstream.StartAsync();
        using var side = ClientSide.ForClient(JsonConfiguration.From(WithDegraded), server);
        using var client = side.CreateClient();
        server.Behavior = OkFrom(r => $"basket of {r.Cookies["session"]}");
        Assert.Equal("basket of A", await FetchAsync(client, "basket", ("Cookie", "session=A")));
        await OpenAsync(side, client, server);

        using var sameCaller = await GetAsync(client, "basket", ("Cookie", "session=A"));
        using var otherCaller = await GetAsync(client, "basket", ("Cookie", "session=B"));
        using var anonymous = await GetAsync(client, "basket");

        Assert.Equal("cache", Header(sameCaller, FallbackHeader));
        Assert.Equal("basket of A", await sameCaller.Content.ReadAsStringAsync());
        Assert.Equal("degraded", Header(otherCaller, FallbackHeader));
        Assert.Equal("degraded", Header(anonymous, FallbackHeader));
    }

    [Fact]
    public async Task ResponseWithVaryXTenant_IsReplayedOnlyToTheSameTenant()
    {
        await using var server = await KestrelDownstream.StartAsync();
        using var side = ClientSide.ForClient(JsonConfiguration.From(WithDegraded), server);
        using var client = side.CreateClient();
        server.Behavior = OkFrom(r => $"settings of {r.Headers["X-Tenant"]}", ("Vary", "X-Tenant"));
        Assert.Equal("settings of t1", await FetchAsync(client, "settings", ("X-Tenant", "t1")));
        await OpenAsync(side, client, server);

        using var sameTenant = await GetAsync(client, "settings", ("X-Tenant", "t1"));
        using var otherTenant = await GetAsync(client, "settings", ("X-Tenant", "t2"));
        using var noTenant = await GetAsync(client, "settings");

        Assert.Equal("cache", Header(sameTenant, FallbackHeader));
        Assert.Equal("settings of t1", await sameTenant.Content.ReadAsStringAsync());
        Assert.Equal("degraded", Header(otherTenant, FallbackHeader));
        Assert.Equal("degraded", Header(noTenant, FallbackHeader));
    }

    [Theory]
    [InlineData("X-Tenant, Accept Language")]
    [InlineData("\"X-Tenant\"")]
    [InlineData("X-Tenant;")]
    public async Task ResponseWithAVaryTheParserRejects_IsNotCached_SoNoOtherTenantIsServedIt(string vary)
    {
        // A Vary that HttpHeaders cannot read reads as no Vary at all: it may name any header, so like an
        // unreadable Cache-Control it forbids storing.
        await using var server = await KestrelDownstream.StartAsync();
        using var side = ClientSide.ForClient(JsonConfiguration.From(WithDegraded), server);
        using var client = side.CreateClient();
        server.Behavior = OkFrom(r => $"settings of {r.Headers["X-Tenant"]}", ("Vary", vary));
        Assert.Equal("settings of t1", await FetchAsync(client, "settings", ("X-Tenant", "t1")));
        await OpenAsync(side, client, server);

        using var otherTenant = await GetAsync(client, "settings", ("X-Tenant", "t2"));

        Assert.Equal("degraded", await otherTenant.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task ExcludeRequestsWithCredentials_RequestWithAuthorizationIsNeverCached_WhileAnonymousOnesStillAre()
    {
        await using var server = await KestrelDownstream.StartAsync();
        using var side = ClientSide.ForClient(
            JsonConfiguration.From("""
                {
                  "CircuitBreaker": {
                    "FailureThreshold": 1,
                    "Fallback": { "Cache": { "Enabled": true, "ExcludeRequestsWithCredentials": true } }
                  }
                }
                """),
            server);
        using var client = side.CreateClient();
        Assert.Equal("ok", await FetchAsync(client, "me", ("Authorization", "Bearer A")));
        Assert.Equal("ok", await FetchAsync(client, "me", ("Cookie", "session=A")));
        Assert.Equal(0, CacheOf(side).Count);
        Assert.Equal("ok", await FetchAsync(client, "public"));
        Assert.Equal(1, CacheOf(side).Count);
        await OpenAsync(side, client, server);

        await Assert.ThrowsAsync<CircuitOpenException>(() => GetAsync(client, "me", ("Authorization", "Bearer A")));
        await Assert.ThrowsAsync<CircuitOpenException>(() => GetAsync(client, "me", ("Cookie", "session=A")));
        using var anonymous = await GetAsync(client, "public");
        Assert.Equal("cache", Header(anonymous, FallbackHeader));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task TokenAddedBelowTheBreaker_ResponseIsReplayedWhileOpen_ToCallersWithoutCredentialsOfTheirOwn(bool synchronous)
    {
        // The lookup sees the request as it enters the breaker, without the token: so must the key, or the
        // entry is never found. Every caller of the client gets the same token below, so none sees another's data.
        await using var server = await KestrelDownstream.StartAsync();
        using var side = ClientSide.Create(
            JsonConfiguration.From(WithDegraded),
            s => s.AddHttpClient("users", c => c.BaseAddress = server.BaseAddress)
                .AddCircuitBreaker()
                .AddHttpMessageHandler(() => new AddServiceToken()));
        using var client = side.CreateClient();
        server.Behavior = OkFrom(r => $"seen with {r.Headers.Authorization}");
        using (var fetched = await SendAsync())
        {
            Assert.Null(Header(fetched, FallbackHeader));
            Assert.Equal("seen with Bearer service-token", await fetched.Content.ReadAsStringAsync());
        }

        await OpenAsync(side, client, server);

        using var replayed = await SendAsync();
        using var withOwnToken = await GetAsync(client, "catalog", ("Authorization", "Bearer A"));

        Assert.Equal("cache", Header(replayed, FallbackHeader));
        Assert.Equal("seen with Bearer service-token", await replayed.Content.ReadAsStringAsync());
        Assert.Equal("degraded", Header(withOwnToken, FallbackHeader));

        // HttpClient.Send takes the breaker's synchronous path, both to fill the cache and to fall back.
        async Task<HttpResponseMessage> SendAsync()
        {
            using var request = Get("catalog");
            return synchronous ? client.Send(request) : await client.SendAsync(request);
        }
    }

    [Fact]
    public async Task ExcludeRequestsWithCredentials_TokenAddedBelowTheBreaker_IsJudgedWithoutIt_AndTheResponseIsCached()
    {
        // Excluding is about the credentials callers send, which is what the lookup sees; a token handler below
        // gives every caller the same one.
        await using var server = await KestrelDownstream.StartAsync();
        using var side = ClientSide.Create(
            JsonConfiguration.From("""
                {
                  "CircuitBreaker": {
                    "FailureThreshold": 1,
                    "Fallback": { "Cache": { "Enabled": true, "ExcludeRequestsWithCredentials": true } }
                  }
                }
                """),
            s => s.AddHttpClient("users", c => c.BaseAddress = server.BaseAddress)
                .AddCircuitBreaker()
                .AddHttpMessageHandler(() => new AddServiceToken()));
        using var client = side.CreateClient();
        Assert.Equal("ok", await FetchAsync(client, "catalog"));
        Assert.Equal("ok", await FetchAsync(client, "me", ("Authorization", "Bearer A")));
        Assert.Equal(1, CacheOf(side).Count);
        await OpenAsync(side, client, server);

        using var replayed = await GetAsync(client, "catalog");
        Assert.Equal("cache", Header(replayed, FallbackHeader));
        await Assert.ThrowsAsync<CircuitOpenException>(() => GetAsync(client, "me", ("Authorization", "Bearer A")));
    }

    [Theory]
    [InlineData("Cache-Control", "private, no-store")]
    [InlineData("Set-Cookie", "session=abc; Path=/; HttpOnly")]
    public async Task ResponseWithNoStoreOrSetCookie_IsNotCached(string header, string value)
    {
        await using var server = await KestrelDownstream.StartAsync();
        using var side = ClientSide.ForClient(JsonConfiguration.From(WithDegraded), server);
        using var client = side.CreateClient();
        server.Behavior = context => context.Request.Path == "/private"
            ? Ok("private", (header, value))(context)
            : Ok("plain")(context);
        Assert.Equal("private", await FetchAsync(client, "private"));
        Assert.Equal("plain", await FetchAsync(client, "plain"));
        Assert.Equal(1, CacheOf(side).Count);
        await OpenAsync(side, client, server);

        using var notCached = await client.GetAsync("private");
        using var plain = await client.GetAsync("plain");

        Assert.Equal("degraded", Header(notCached, FallbackHeader));
        Assert.Equal("cache", Header(plain, FallbackHeader));
        Assert.Equal("plain", await plain.Content.ReadAsStringAsync());
    }

    [Theory]
    [InlineData("private")]
    [InlineData("private=\"X-Api-Key\", max-age=60")]
    public async Task PrivateResponse_IsNotCached_SoNoOtherCallerIsServedIt(string cacheControl)
    {
        // The caller's credential is in a header the cache does not know to key by: only `private` tells.
        await using var server = await KestrelDownstream.StartAsync();
        using var side = ClientSide.ForClient(JsonConfiguration.From(WithDegraded), server);
        using var client = side.CreateClient();
        server.Behavior = OkFrom(r => $"data of {r.Headers["X-Api-Key"]}", ("Cache-Control", cacheControl));
        Assert.Equal("data of A", await FetchAsync(client, "me", ("X-Api-Key", "A")));
        Assert.Equal(0, CacheOf(side).Count);
        await OpenAsync(side, client, server);

        using var otherCaller = await GetAsync(client, "me", ("X-Api-Key", "B"));

        Assert.Equal("degraded", Header(otherCaller, FallbackHeader));
        Assert.Equal("degraded", await otherCaller.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task PrivateResponse_WhoseSecondCacheControlLineIsUnreadable_IsNotCached()
    {
        // Two Cache-Control lines (a framework's and the app's): HttpHeaders merges the lines it can read and drops
        // the other, so the typed value holds max-age=60 alone, and private may be in the line dropped.
        await using var server = await KestrelDownstream.StartAsync();
        using var side = ClientSide.ForClient(JsonConfiguration.From(WithDegraded), server);
        using var client = side.CreateClient();
        server.Behavior = OkFrom(r => $"data of {r.Headers["X-Api-Key"]}", ("Cache-Control", "max-age=60"), ("Cache-Control", "private, max-age=\"60"));
        Assert.Equal("data of A", await FetchAsync(client, "me", ("X-Api-Key", "A")));
        Assert.Equal(0, CacheOf(side).Count);
        await OpenAsync(side, client, server);

        using var otherCaller = await GetAsync(client, "me", ("X-Api-Key", "B"));

        Assert.Equal("degraded", await otherCaller.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task FailedAndNonGetResponses_AreNotCached()
    {
        await using var server = await KestrelDownstream.StartAsync();
        using var side = ClientSide.ForClient(JsonConfiguration.From(WithDegraded), server);
        using var client = side.CreateClient();
        server.Behavior = context =>
        {
            context.Response.StatusCode = context.Request.Path == "/missing" ? 404 : 200;
            return context.Response.WriteAsync("answer", context.RequestAborted);
        };
        using (var missing = await client.GetAsync("missing"))
        {
            Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
            await missing.Content.ReadAsStringAsync();
        }

        using (var content = new StringContent("{}"))
        using (var posted = await client.PostAsync("orders", content))
        {
            Assert.Equal("answer", await posted.Content.ReadAsStringAsync());
        }

        Assert.Equal(0, CacheOf(side).Count);
        await OpenAsync(side, client, server);

        using var missingAgain = await client.GetAsync("missing");
        Assert.Equal("degraded", Header(missingAgain, FallbackHeader));
    }

    /// <summary>A handler below the breaker that authenticates as the service, as a token handler does.</summary>
    private sealed class AddServiceToken : DelegatingHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", "service-token");
            return base.SendAsync(request, cancellationToken);
        }

        protected override HttpResponseMessage Send(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", "service-token");
            return base.Send(request, cancellationToken);
        }
    }
}
