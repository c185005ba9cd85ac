using System.Net;
using Microsoft.Extensions.Time.Testing;

namespace CircuitBreaker.Http.Tests.Fallback;

public sealed class ResponseCacheTests
{
    private readonly FakeTimeProvider _time = new();

    [Fact]
    public void Store_ManyEntries_NeverHoldsMoreThanMaxEntries()
    {
        using var cache = new ResponseCache(maxEntries: 10, maxTotalBytes: 1_000_000, _time);

        for (var i = 0; i < 200; i++)
        {
            Store(cache, $"http://a.test/{i}", new byte[10]);
        }

        Assert.InRange(cache.Count, 1, 10);
        Assert.InRange(cache.Charged, 1, 1_000_000);
    }

    [Fact]
    public void Store_LargeBodies_NeverChargesMoreThanMaxTotalBytes()
    {
        using var cache = new ResponseCache(maxEntries: 1000, maxTotalBytes: 100_000, _time);

        for (var i = 0; i < 200; i++)
        {
            Store(cache, $"http://a.test/{i}", new byte[10_000]);
        }

        Assert.InRange(cache.Count, 1, 10);
        Assert.InRange(cache.Charged, 1, 100_000);
    }

    /// <remarks>
    /// A host chooses its headers (SocketsHttpHandler accepts 64 KiB of them by default, more when raised), and the
    /// Vary values are the callers' request headers: kept with every entry, they count against the bound as its body does.
    /// </remarks>
    [Fact]
    public void Store_AnEntryWhoseHeadersAloneOutgrowMaxTotalBytes_IsNotStored()
    {
        using var cache = new ResponseCache(maxEntries: 10, maxTotalBytes: 10_000, _time);

        Store(cache, "http://a.test/headers", [], response: r => r.Headers.TryAddWithoutValidation("X-Padding", new string('h', 20_000)));
        Store(cache, "http://a.test/vary", [], request: r => r.Headers.TryAddWithoutValidation("X-Big", new string('v', 20_000)), response: r => r.Headers.Vary.Add("X-Big"));

        Assert.Equal(0, cache.Count);
    }

    [Fact]
    public void Store_ManyEntriesWithLargeHeaders_NeverHoldMoreHeaderBytesThanMaxTotalBytes()
    {
        using var cache = new ResponseCache(maxEntries: 10, maxTotalBytes: 10_000, _time);

        for (var i = 0; i < 20; i++)
        {
            _time.Advance(TimeSpan.FromMilliseconds(1));
            Store(cache, $"http://a.test/{i}", [], response: r => r.Headers.TryAddWithoutValidation("X-Padding", new string('h', 3_000)));
        }

        Assert.InRange(cache.Count * 3_000, 3_000, 10_000);
        Assert.InRange(cache.Charged, cache.Count * 3_000, 10_000);
    }

    [Theory]
    [InlineData(10, 19)] // each entry charged 1 byte rounded down: 19 would fit in 19 bytes
    [InlineData(3, 64L * 1024 * 1024)] // charged a third of 64 MiB rounded up, only 2 would fit
    [InlineData(10_000, 64L * 1024 * 1024)] // MaxEntries 10,000 with the default MaxTotalBytes: 10,001 or 9,999, rounded down or up
    public void Store_MaxTotalBytesNotAMultipleOfMaxEntries_HoldsMaxEntriesButNotOneMore(int maxEntries, long maxTotalBytes)
    {
        using var cache = new ResponseCache(maxEntries, maxTotalBytes, _time);
        for (var i = 0; i < maxEntries; i++)
        {
            _time.Advance(TimeSpan.FromMilliseconds(1));
            Store(cache, $"http://a.test/{i}", []);
        }

        Assert.Equal(maxEntries, cache.Count);

        _time.Advance(TimeSpan.FromMilliseconds(1));
        Store(cache, "http://a.test/one-more", []);

        Assert.InRange(cache.Count, 1, maxEntries); // room is made by compacting, a tenth at a time
        Assert.InRange(cache.Charged, 1, maxTotalBytes);
        Assert.NotNull(Find(cache, "http://a.test/one-more", TimeSpan.FromHours(1)));
    }

    [Fact]
    public void Store_AnEntryLargerThanMaxTotalBytes_LeavesTheOthersInPlace()
    {
        // MaxEntryBytes is checked on its own (1 MiB by default): a MaxTotalBytes set below it lets a body through
        // that the cache can never hold, and making room for it would only empty the cache.
        using var cache = new ResponseCache(maxEntries: 100, maxTotalBytes: 10_000, _time);
        for (var i = 0; i < 5; i++)
        {
            Store(cache, $"http://a.test/{i}", new byte[1_000]);
        }

        Store(cache, "http://a.test/large", new byte[20_000]);

        Assert.Equal(5, cache.Count);
        Assert.NotNull(Find(cache, "http://a.test/0", TimeSpan.FromMinutes(1)));
    }

    [Fact]
    public void Store_IntoAFullCacheWhoseMaxTotalBytesIsLongMaxValue_KeepsTheNewestResponse()
    {
        // long.MaxValue is how "bounded by MaxEntries alone" is written: the charges of a full cache plus one more then
        // exceed it, and must not overflow into room that is not there.
        using var cache = new ResponseCache(maxEntries: 10, maxTotalBytes: long.MaxValue, _time);
        for (var i = 0; i < 20; i++)
        {
            _time.Advance(TimeSpan.FromSeconds(1));
            Store(cache, $"http://a.test/{i}", new byte[10]);
        }

        Assert.NotNull(Find(cache, "http://a.test/19", TimeSpan.FromHours(1)));
        Assert.InRange(cache.Count, 1, 10);
    }

    [Fact]
    public void TakeEntriesOf_IntoACacheWhoseMaxTotalBytesIsLongMaxValue_KeepsOnlyWhatFits_TheNewest()
    {
        using var old = CacheOf40Entries();

        using var resized = new ResponseCache(maxEntries: 10, maxTotalBytes: long.MaxValue, _time);
        resized.TakeEntriesOf(old);

        Assert.InRange(resized.Count, 1, 10);
        Assert.NotNull(Find(resized, "http://a.test/39", TimeSpan.FromHours(1)));
    }

    [Fact]
    public void Find_ReturnsEntryOnlyForSameRequestWithinMaxAge()
    {
        using var cache = new ResponseCache(10, 1_000_000, _time);
        Store(cache, "http://a.test/1", "hello"u8.ToArray());

        _time.Advance(TimeSpan.FromSeconds(30));

        Assert.NotNull(Find(cache, "http://a.test/1", TimeSpan.FromSeconds(30)));
        Assert.Null(Find(cache, "http://a.test/1", TimeSpan.FromSeconds(29)));
        Assert.Null(Find(cache, "http://a.test/2", TimeSpan.FromMinutes(1)));
    }

    [Fact]
    public void Find_ResponseReceivedWithAnAge_CountsThatAgeAgainstMaxAge()
    {
        using var cache = new ResponseCache(10, 1_000_000, _time);
        Store(cache, "http://a.test/1", [1], response: r => r.Headers.TryAddWithoutValidation("Age", "3600"));

        Assert.Null(Find(cache, "http://a.test/1", TimeSpan.FromMinutes(5)));
        Assert.NotNull(Find(cache, "http://a.test/1", TimeSpan.FromHours(1)));
        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.Null(Find(cache, "http://a.test/1", TimeSpan.FromHours(1)));
    }

    [Theory]
    [InlineData("max-age=60, must-revalidate")]
    [InlineData("max-age=60, proxy-revalidate")]
    [InlineData("s-maxage=60, max-age=3600")] // s-maxage is the lifetime in a shared cache, and forbids serving stale
    [InlineData("s-maxage=60")]
    public void Find_ResponseThatMayNotBeServedStale_IsReplayedOnlyWhileFresh(string cacheControl)
    {
        using var cache = new ResponseCache(10, 1_000_000, _time);
        Store(cache, "http://a.test/1", [1], response: r => r.Headers.TryAddWithoutValidation("Cache-Control", cacheControl));

        _time.Advance(TimeSpan.FromSeconds(59));
        Assert.NotNull(Find(cache, "http://a.test/1", TimeSpan.FromMinutes(5)));

        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.Null(Find(cache, "http://a.test/1", TimeSpan.FromMinutes(5)));
    }

    [Fact]
    public void Find_ResponseThatMayNotBeServedStale_CountsTheAgeItArrivedWith()
    {
        using var cache = new ResponseCache(10, 1_000_000, _time);
        Store(cache, "http://a.test/1", [1], response: r =>
        {
            r.Headers.TryAddWithoutValidation("Cache-Control", "max-age=60, must-revalidate");
            r.Headers.TryAddWithoutValidation("Age", "50");
        });

        _time.Advance(TimeSpan.FromSeconds(9));
        Assert.NotNull(Find(cache, "http://a.test/1", TimeSpan.FromMinutes(5)));

        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.Null(Find(cache, "http://a.test/1", TimeSpan.FromMinutes(5)));
    }

    [Fact]
    public void Find_ResponseThatMayNotBeServedStale_WithExpiresInsteadOfMaxAge_IsFreshUntilExpiresLessDate()
    {
        using var cache = new ResponseCache(10, 1_000_000, _time);
        var date = new DateTimeOffset(2026, 11, 28, 10, 0, 0, TimeSpan.Zero);
        Store(cache, "http://a.test/1", [1], response: r =>
        {
            r.Headers.TryAddWithoutValidation("Cache-Control", "must-revalidate");
            r.Headers.Date = date;
            r.Content.Headers.Expires = date.AddSeconds(30);
        });

        _time.Advance(TimeSpan.FromSeconds(29));
        Assert.NotNull(Find(cache, "http://a.test/1", TimeSpan.FromMinutes(5)));

        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.Null(Find(cache, "http://a.test/1", TimeSpan.FromMinutes(5)));
    }

    [Theory]
    [InlineData("must-revalidate", null)] // no lifetime at all: stale from the start
    [InlineData("max-age=0, must-revalidate", null)]
    [InlineData("must-revalidate", "Expires")] // Expires without Date: no lifetime the entry can measure
    public void MaxReplayAge_ResponseThatMayNotBeServedStale_WithoutALifetime_IsZero(string cacheControl, string? expires)
    {
        using var response = new HttpResponseMessage(HttpStatusCode.OK) { Content = new ByteArrayContent([]) };
        response.Headers.TryAddWithoutValidation("Cache-Control", cacheControl);
        if (expires is not null)
        {
            response.Content.Headers.Expires = DateTimeOffset.UtcNow.AddHours(1);
        }

        Assert.Equal(TimeSpan.Zero, ResponseCacheKey.MaxReplayAge(response));
    }

    [Fact]
    public void MaxReplayAge_ResponseThatMayBeServedStale_IsUnlimited()
    {
        using var response = new HttpResponseMessage(HttpStatusCode.OK);
        response.Headers.TryAddWithoutValidation("Cache-Control", "public, max-age=60");

        Assert.Equal(TimeSpan.MaxValue, ResponseCacheKey.MaxReplayAge(response));
    }

    [Fact]
    public void AgeOf_ResponseReceivedWithAnAge_IsThatAgePlusTheTimeSinceItWasStored()
    {
        using var cache = new ResponseCache(10, 1_000_000, _time);
        Store(cache, "http://a.test/1", [1], response: r => r.Headers.TryAddWithoutValidation("Age", "100"));
        var entry = Find(cache, "http://a.test/1", TimeSpan.FromMinutes(5))!;

        _time.Advance(TimeSpan.FromSeconds(30));

        Assert.Equal(TimeSpan.FromSeconds(130), cache.AgeOf(entry, cache.Clock.Now));
    }

    [Theory]
    [InlineData(null, 0)]
    [InlineData("0", 0)]
    [InlineData("3600", 3600)]
    [InlineData(" 42 ", 42)]
    [InlineData("7, 9", 7)] // a list counts by its first member (RFC 9111 §5.1)
    [InlineData("abc", 0)] // invalid: ignored
    [InlineData("-5", 0)]
    [InlineData("1.5", 0)]
    [InlineData("99999999999", 2147483648)] // too large: 2^31 (RFC 9111 §1.2.2), old rather than new
    public void ReceivedAge_IsTheAgeHeadersWholeSeconds_AsRfc9111ReadsThem(string? age, long seconds)
    {
        using var response = new HttpResponseMessage(HttpStatusCode.OK) { Content = new ByteArrayContent([]) };
        if (age is not null)
        {
            response.Headers.TryAddWithoutValidation("Age", age);
        }

        var entry = new CachedResponse(new ResponseHead(response), [], [], storedAt: 0);

        Assert.Equal(TimeSpan.FromSeconds(seconds), entry.ReceivedAge);
    }

    [Fact]
    public void Find_RequestWithOtherCredentials_Misses()
    {
        using var cache = new ResponseCache(10, 1_000_000, _time);
        Store(cache, "http://a.test/1", [1], request => request.Headers.TryAddWithoutValidation("Authorization", "Bearer A"));

        Assert.NotNull(Find(cache, "http://a.test/1", TimeSpan.FromMinutes(1), r => r.Headers.TryAddWithoutValidation("Authorization", "Bearer A")));
        Assert.Null(Find(cache, "http://a.test/1", TimeSpan.FromMinutes(1), r => r.Headers.TryAddWithoutValidation("Authorization", "Bearer B")));
        Assert.Null(Find(cache, "http://a.test/1", TimeSpan.FromMinutes(1)));
        Assert.Null(Find(cache, "http://a.test/1", TimeSpan.FromMinutes(1), r => r.Headers.TryAddWithoutValidation("Cookie", "Bearer A")));
    }

    [Fact]
    public void Key_DoesNotContainTheCredentials()
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "http://a.test/1");
        request.Headers.TryAddWithoutValidation("Authorization", "Bearer secret-token");

        Assert.DoesNotContain("secret-token", ResponseCacheKey.For(request), StringComparison.Ordinal);
    }

    [Fact]
    public void Find_VaryHeaderWithOtherValue_Misses()
    {
        using var cache = new ResponseCache(10, 1_000_000, _time);
        Store(cache, "http://a.test/1", [1], r => r.Headers.TryAddWithoutValidation("X-Tenant", "blue"), response => response.Headers.Vary.Add("X-Tenant"));

        Assert.NotNull(Find(cache, "http://a.test/1", TimeSpan.FromMinutes(1), r => r.Headers.TryAddWithoutValidation("X-Tenant", "blue")));
        Assert.Null(Find(cache, "http://a.test/1", TimeSpan.FromMinutes(1), r => r.Headers.TryAddWithoutValidation("X-Tenant", "red")));
        Assert.Null(Find(cache, "http://a.test/1", TimeSpan.FromMinutes(1)));
    }

    [Theory]
    [InlineData("Cache-Control", "no-store", false)]
    [InlineData("Cache-Control", "max-age=60", true)]
    [InlineData("Set-Cookie", "session=1", false)]
    [InlineData("Vary", "*", false)]
    [InlineData("Cache-Control", "private", false)]
    [InlineData("Cache-Control", "max-age=60, private", false)]
    [InlineData("Cache-Control", "private=\"X-Api-Key\"", false)] // qualified: still not for a shared cache
    [InlineData("Cache-Control", "public, max-age=60", true)]
    [InlineData("Cache-Control", "private, max-age=abc", false)] // unreadable as a whole: it could say private
    [InlineData("Cache-Control", "PRIVATE", false)]
    [InlineData("Cache-Control", "no-cache", false)] // never reused without asking the origin, which is down
    [InlineData("Cache-Control", "no-cache=\"Set-Cookie\", max-age=60", false)]
    [InlineData("Cache-Control", "max-age=60, must-revalidate", true)] // replayed while fresh (below)
    public void IsCacheableResponse_HonoursHeaders(string header, string value, bool cacheable)
    {
        using var response = new HttpResponseMessage(HttpStatusCode.OK);
        response.Headers.TryAddWithoutValidation(header, value);

        Assert.Equal(cacheable, ResponseCacheKey.IsCacheableResponse(response));
    }

    [Theory]
    [InlineData(HttpStatusCode.OK, true)]
    [InlineData(HttpStatusCode.NoContent, true)]
    [InlineData(HttpStatusCode.PartialContent, false)]
    [InlineData(HttpStatusCode.NotModified, false)]
    [InlineData(HttpStatusCode.NotFound, false)]
    public void IsCacheableResponse_OnlyWholeSuccessfulResponses(HttpStatusCode status, bool cacheable)
    {
        using var response = new HttpResponseMessage(status);

        Assert.Equal(cacheable, ResponseCacheKey.IsCacheableResponse(response));
    }

    [Theory]
    [InlineData("GET", false, null, true)]
    [InlineData("HEAD", false, null, true)]
    [InlineData("POST", false, null, false)]
    [InlineData("GET", true, "Bearer A", false)]
    [InlineData("GET", false, "Bearer A", true)]
    public void IsCacheableRequest_MethodsAndCredentials(string method, bool excludeCredentials, string? authorization, bool cacheable)
    {
        using var request = new HttpRequestMessage(new HttpMethod(method), "http://a.test/");
        if (authorization is not null)
        {
            request.Headers.TryAddWithoutValidation("Authorization", authorization);
        }

        Assert.Equal(cacheable, ResponseCacheKey.IsCacheableRequest(request, excludeCredentials));
    }

    [Theory]
    [InlineData("GET")]
    [InlineData("HEAD")]
    public void CacheableRequest_KeyAndHeaderValues_AreThoseTheLookupReadsFromTheSameRequest(string method)
    {
        // The capture takes them from a snapshot, the lookup from the request itself: any difference in form
        // (a multi-valued header's joining, a name's case) would make every entry unreachable.
        using var request = new HttpRequestMessage(new HttpMethod(method), "http://a.test/1?q=%C3%A9");
        request.Headers.TryAddWithoutValidation("Authorization", "Bearer A");
        request.Headers.TryAddWithoutValidation("Cookie", ["a=1", "b=2"]);
        request.Headers.TryAddWithoutValidation("X-Tenant", ["blue", "green"]);
        request.Headers.TryAddWithoutValidation("User-Agent", ["app/1.0", "(test)"]);
        request.Headers.TryAddWithoutValidation("X-Empty", string.Empty);

        var snapshot = CacheableRequest.Of(request, excludeCredentials: false)!;

        Assert.Equal(ResponseCacheKey.For(request), snapshot.Key());
        foreach (var name in new[] { "authorization", "Cookie", "X-TENANT", "User-Agent", "X-Empty", "Accept-Encoding" })
        {
            Assert.Equal(ResponseCacheKey.HeaderValue(request, name), snapshot.HeaderValue(name));
        }
    }

    [Fact]
    public void CacheableRequest_VaryNamingCredentials_KeepsNoCredentialValue_TheKeyTellsThemApart()
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "http://a.test/1");
        request.Headers.TryAddWithoutValidation("Authorization", "Bearer secret-token");
        request.Headers.TryAddWithoutValidation("Cookie", "session=secret-cookie");
        request.Headers.TryAddWithoutValidation("X-Tenant", "blue");
        using var response = new HttpResponseMessage(HttpStatusCode.OK);
        response.Headers.Vary.Add("authorization");
        response.Headers.Vary.Add("Cookie");
        response.Headers.Vary.Add("X-Tenant");

        var snapshot = CacheableRequest.Of(request, excludeCredentials: false)!;

        Assert.Equal([("X-Tenant", (string?)"blue")], snapshot.Vary(response));
        Assert.DoesNotContain("secret", snapshot.Key(), StringComparison.Ordinal);
        using var other = new HttpRequestMessage(HttpMethod.Get, "http://a.test/1");
        other.Headers.TryAddWithoutValidation("Authorization", "Bearer another-token");
        Assert.NotEqual(ResponseCacheKey.For(other), snapshot.Key());
    }

    [Fact]
    public void CacheableRequest_OfARequestWithoutHeaders_HasTheLookupsKeyAndNoValues()
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "http://a.test/1");

        var snapshot = CacheableRequest.Of(request, excludeCredentials: true)!;

        Assert.Equal(ResponseCacheKey.For(request), snapshot.Key());
        Assert.Null(snapshot.HeaderValue("Accept-Encoding"));
    }

    [Theory]
    [InlineData("POST", null, null)]
    [InlineData("GET", "Authorization", "Bearer A")]
    [InlineData("GET", "Cache-Control", "no-store")]
    public void CacheableRequest_OfARequestTheCacheMayNotStore_IsNull(string method, string? header, string? value)
    {
        using var request = new HttpRequestMessage(new HttpMethod(method), "http://a.test/1");
        if (header is not null)
        {
            request.Headers.TryAddWithoutValidation(header, value);
        }

        Assert.Null(CacheableRequest.Of(request, excludeCredentials: true));
    }

    [Fact]
    public async Task ToResponse_GivesAFreshCopyEachTime()
    {
        using var cache = new ResponseCache(10, 1_000_000, _time);
        Store(cache, "http://a.test/1", "hello"u8.ToArray());
        using var request = new HttpRequestMessage(HttpMethod.Get, "http://a.test/1");
        var entry = cache.Find(request, TimeSpan.FromMinutes(1), cache.Clock.Now)!;

        var first = entry.ToResponse(request, TimeSpan.Zero);
        using var second = entry.ToResponse(request, TimeSpan.Zero);
        first.Dispose();

        Assert.NotSame(first, second);
        Assert.Equal("hello", await second.Content.ReadAsStringAsync());
    }

    [Theory]
    [InlineData("Fine, thanks", "Fine, thanks")]
    [InlineData(null, "OK")]
    public void ToResponse_ReplaysAReasonPhraseOfItsOwn_AndTheStandardOneOtherwise(string? captured, string replayed)
    {
        using var cache = new ResponseCache(10, 1_000_000, _time);
        Store(cache, "http://a.test/1", [], response: r => r.ReasonPhrase = captured);

        using var request = new HttpRequestMessage(HttpMethod.Get, "http://a.test/1");
        using var response = cache.Find(request, TimeSpan.FromMinutes(1), cache.Clock.Now)!.ToResponse(request, TimeSpan.FromSeconds(7.9));

        Assert.Equal(replayed, response.ReasonPhrase);
        Assert.Equal(TimeSpan.FromSeconds(7), response.Headers.Age);
    }

    [Fact]
    public void TakeEntriesOf_ASmallerCache_KeepsTheNewestEntries()
    {
        using var old = CacheOf40Entries();

        using var resized = new ResponseCache(maxEntries: 10, maxTotalBytes: 1_000_000, _time);
        resized.TakeEntriesOf(old);

        Assert.Equal(10, resized.Count);
        for (var i = 30; i < 40; i++)
        {
            Assert.NotNull(Find(resized, $"http://a.test/{i}", TimeSpan.FromHours(1)));
        }
    }

    [Fact]
    public void TakeEntriesOf_ThenAStoreIntoTheFullCache_CompactsTheOldestTakenEntryFirst()
    {
        // Least recently used entries are compacted first: the entries taken over must keep their order, or the first
        // response stored after a reload that shrank the cache would push out an arbitrary one of them.
        using var old = CacheOf40Entries();

        using var resized = new ResponseCache(maxEntries: 10, maxTotalBytes: 1_000_000, _time);
        resized.TakeEntriesOf(old);
        for (var i = 0; i < 3; i++)
        {
            _time.Advance(TimeSpan.FromSeconds(1));
            Store(resized, $"http://a.test/new/{i}", new byte[10]);
        }

        var missing = Enumerable.Range(30, 10).Where(i => Find(resized, $"http://a.test/{i}", TimeSpan.FromHours(1)) is null).ToList();
        Assert.Equal([30, 31, 32], missing);
    }

    /// <summary>A cache holding <c>http://a.test/0</c> to <c>/39</c>, stored a second apart, oldest first.</summary>
    private ResponseCache CacheOf40Entries()
    {
        var cache = new ResponseCache(maxEntries: 100, maxTotalBytes: 1_000_000, _time);
        for (var i = 0; i < 40; i++)
        {
            Store(cache, $"http://a.test/{i}", new byte[10]);
            _time.Advance(TimeSpan.FromSeconds(1));
        }

        return cache;
    }

    private static void Store(ResponseCache cache, string uri, byte[] body, Action<HttpRequestMessage>? request = null, Action<HttpResponseMessage>? response = null)
    {
        using var req = new HttpRequestMessage(HttpMethod.Get, uri);
        request?.Invoke(req);
        using var resp = new HttpResponseMessage(HttpStatusCode.OK) { Content = new ByteArrayContent(body) };
        response?.Invoke(resp);
        cache.Store(ResponseCacheKey.For(req), new CachedResponse(new ResponseHead(resp), CacheableRequest.Of(req, excludeCredentials: false)!.Vary(resp), body, cache.Clock.Now));
    }

    private static CachedResponse? Find(ResponseCache cache, string uri, TimeSpan maxAge, Action<HttpRequestMessage>? request = null)
    {
        using var req = new HttpRequestMessage(HttpMethod.Get, uri);
        request?.Invoke(req);
        return cache.Find(req, maxAge, cache.Clock.Now);
    }
}
