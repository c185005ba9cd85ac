using System.Net;
using CircuitBreaker.Http.Tests.TestSupport;
using static CircuitBreaker.Http.Tests.Integration.Fallback.FallbackSupport;

namespace CircuitBreaker.Http.Tests.Integration.Fallback;

/// <summary>The cache's memory stays bounded by MaxEntries, MaxTotalBytes and MaxEntryBytes, whatever the traffic.</summary>
public class CacheBoundsTests
{
    private const int Callers = 8;

    [Fact]
    public async Task TenThousandDistinctUrlsWith100KiBBodies_LeaveTheCacheWithinMaxEntriesAndMaxTotalBytes()
    {
        const int urls = 10_000;
        const long maxTotalBytes = 16L * 1024 * 1024;
        await using var server = await KestrelDownstream.StartAsync();
        using var side = ClientSide.ForClient(
            JsonConfiguration.From($$"""
                {
                  "CircuitBreaker": {
                    "FailureThreshold": 1,
                    "Fallback": { "Cache": { "Enabled": true, "MaxEntries": 1000, "MaxTotalBytes": {{maxTotalBytes}} } }
                  }
                }
                """),
            server);
        using var client = side.CreateClient();
        var body = new byte[100 * 1024];
        new Random(42).NextBytes(body);
        server.Behavior = OkBytes(body);
        var cache = CacheOf(side);
        var maxCount = 0;
        var maxCharged = 0L;

        await RunCallersAsync(urls, async i =>
        {
            using var response = await client.GetAsync($"items/{i}?v=1");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var received = await response.Content.ReadAsByteArrayAsync();
            Assert.Equal(body.Length, received.Length);
            if (i % 100 == 0)
            {
                InterlockedMax(ref maxCount, cache.Count);
                InterlockedMax(ref maxCharged, cache.Charged);
            }
        });

        Assert.Equal(urls, server.RequestCount);
        Assert.Equal(1000, cache.MaxEntries);
        Assert.Equal(maxTotalBytes, cache.MaxTotalBytes);
        var (count, charged) = await SettledAsync(cache);
        Assert.InRange(count, 1, cache.MaxEntries);
        Assert.InRange(charged, (long)count * body.Length, cache.MaxTotalBytes); // every entry holds its whole body
        Assert.InRange(maxCount, 1, cache.MaxEntries);
        Assert.InRange(maxCharged, 1, cache.MaxTotalBytes);

        // What is left in the cache is still replayed, byte for byte.
        await OpenAsync(side, client, server);
        var replayed = 0;
        for (var i = urls - 1; i >= 0 && replayed == 0; i--)
        {
            try
            {
                using var response = await client.GetAsync($"items/{i}?v=1");
                Assert.Equal("cache", Header(response, FallbackHeader));
                Assert.Equal(body, await response.Content.ReadAsByteArrayAsync());
                replayed++;
            }
            catch (CircuitOpenException)
            {
                // Not (or no longer) cached.
            }
        }

        Assert.Equal(1, replayed);
        Assert.Equal(urls + 1, server.RequestCount);
    }

    [Fact]
    public async Task ManyDistinctUrlsWithSmallBodies_LeaveTheCacheWithinMaxEntries()
    {
        const int urls = 3_000;
        await using var server = await KestrelDownstream.StartAsync();
        using var side = ClientSide.ForClient(
            JsonConfiguration.From("""
                { "CircuitBreaker": { "Fallback": { "Cache": { "Enabled": true, "MaxEntries": 100 } } } }
                """),
            server);
        using var client = side.CreateClient();
        server.Behavior = OkFrom(r => $"small body of {r.Path}");
        var cache = CacheOf(side);

        await RunCallersAsync(urls, async i =>
        {
            using var response = await client.GetAsync($"items/{i}");
            Assert.Equal($"small body of /items/{i}", await response.Content.ReadAsStringAsync());
        });

        Assert.Equal(urls, server.RequestCount);
        Assert.InRange(cache.Count, 1, 100);
        Assert.InRange(cache.Charged, 1, cache.MaxTotalBytes);
    }

    [Fact]
    public async Task BodyLargerThanMaxEntryBytes_IsNotCached_WhileOneOfExactlyMaxEntryBytesIs()
    {
        await using var server = await KestrelDownstream.StartAsync();
        using var side = ClientSide.ForClient(
            JsonConfiguration.From("""
                {
                  "CircuitBreaker": {
                    "FailureThreshold": 1,
                    "Fallback": { "Cache": { "Enabled": true, "MaxEntryBytes": 1024 } }
                  }
                }
                """),
            server);
        using var client = side.CreateClient();
        var big = new byte[1025];
        var fits = new byte[1024];
        Array.Fill(big, (byte)'b');
        Array.Fill(fits, (byte)'f');
        server.Behavior = context => OkBytes(context.Request.Path == "/big" ? big : fits)(context);

        using (var response = await client.GetAsync("big"))
        {
            Assert.Equal(big, await response.Content.ReadAsByteArrayAsync());
        }

        using (var response = await client.GetAsync("fits"))
        {
            Assert.Equal(fits, await response.Content.ReadAsByteArrayAsync());
        }

        Assert.Equal(1, CacheOf(side).Count);
        await OpenAsync(side, client, server);

        await Assert.ThrowsAsync<CircuitOpenException>(() => client.GetAsync("big"));
        using var replayed = await client.GetAsync("fits");
        Assert.Equal(fits, await replayed.Content.ReadAsByteArrayAsync());
    }

    [Fact]
    public async Task Reload_NewBounds_KeepsTheCachedResponses_TheNewestWhenTheyNoLongerAllFit()
    {
        // The cache matters most while a circuit is open, when nothing lost can be fetched again: resizing it must not empty it.
        await using var server = await KestrelDownstream.StartAsync();
        using var settings = new AppSettingsFile("""{ "CircuitBreaker": { "FailureThreshold": 1, "Fallback": { "Cache": { "Enabled": true, "MaxEntries": 100 } } } }""");
        using var side = ClientSide.ForClient(settings.Root, server);
        using var client = side.CreateClient();
        server.Behavior = context => Ok(context.Request.Path)(context);
        foreach (var path in new[] { "a", "b" })
        {
            using var response = await client.GetAsync(path);
            await response.Content.ReadAsStringAsync();
            side.Time.Advance(TimeSpan.FromSeconds(1));
        }

        await OpenAsync(side, client, server);

        settings.Rewrite("""{ "CircuitBreaker": { "FailureThreshold": 1, "Fallback": { "Cache": { "Enabled": true, "MaxEntries": 200 } } } }""");
        foreach (var path in new[] { "a", "b" })
        {
            using var replayed = await client.GetAsync(path);
            Assert.Equal("cache", Header(replayed, FallbackHeader));
            Assert.Equal("/" + path, await replayed.Content.ReadAsStringAsync());
        }

        settings.Rewrite("""{ "CircuitBreaker": { "FailureThreshold": 1, "Fallback": { "Cache": { "Enabled": true, "MaxEntries": 1 } } } }""");
        Assert.Equal(1, CacheOf(side).Count);
        using (var newest = await client.GetAsync("b"))
        {
            Assert.Equal("cache", Header(newest, FallbackHeader));
        }

        await Assert.ThrowsAsync<CircuitOpenException>(() => client.GetAsync("a"));
    }

    [Fact]
    public async Task ChunkedResponseOfUnknownLength_IsCached()
    {
        await using var server = await KestrelDownstream.StartAsync();
        using var side = ClientSide.ForClient(
            JsonConfiguration.From("""{ "CircuitBreaker": { "FailureThreshold": 1, "Fallback": { "Cache": { "Enabled": true } } } }"""),
            server);
        using var client = side.CreateClient();
        server.Behavior = OkChunked("alpha,", "beta,", "gamma");

        using (var response = await client.GetAsync("list", HttpCompletionOption.ResponseHeadersRead))
        {
            Assert.True(response.Headers.TransferEncodingChunked);
            Assert.Null(response.Content.Headers.ContentLength);
            Assert.Equal("alpha,beta,gamma", await response.Content.ReadAsStringAsync());
        }

        await OpenAsync(side, client, server);

        using var replayed = await client.GetAsync("list");
        Assert.Equal("cache", Header(replayed, FallbackHeader));
        Assert.Equal("alpha,beta,gamma", await replayed.Content.ReadAsStringAsync());
        Assert.Null(replayed.Headers.TransferEncodingChunked);
    }

    [Fact]
    public async Task ChunkedResponseGrowingPastMaxEntryBytes_IsNotCached_AndTheCallerStillGetsAllOfIt()
    {
        await using var server = await KestrelDownstream.StartAsync();
        using var side = ClientSide.ForClient(
            JsonConfiguration.From("""
                {
                  "CircuitBreaker": {
                    "FailureThreshold": 1,
                    "Fallback": { "Cache": { "Enabled": true, "MaxEntryBytes": 1000 } }
                  }
                }
                """),
            server);
        using var client = side.CreateClient();
        var chunk = new string('x', 600);
        server.Behavior = OkChunked(chunk, chunk);

        using (var response = await client.GetAsync("list"))
        {
            Assert.True(response.Headers.TransferEncodingChunked);
            Assert.Equal(chunk + chunk, await response.Content.ReadAsStringAsync());
        }

        Assert.Equal(0, CacheOf(side).Count);
        await OpenAsync(side, client, server);
        await Assert.ThrowsAsync<CircuitOpenException>(() => client.GetAsync("list"));
    }

    /// <summary>Count and charge read together, once no background compaction moves them between the two reads.</summary>
    private static async Task<(int Count, long Charged)> SettledAsync(ResponseCache cache)
    {
        for (var attempt = 0; ; attempt++)
        {
            var (count, charged) = (cache.Count, cache.Charged);
            if ((cache.Count, cache.Charged) == (count, charged) || attempt == 100)
            {
                return (count, charged);
            }

            await Task.Yield();
        }
    }

    private static async Task RunCallersAsync(int calls, Func<int, Task> call)
    {
        var next = -1;
        await Task.WhenAll(Enumerable.Range(0, Callers).Select(_ => Task.Run(async () =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < calls)
            {
                await call(i);
            }
        })));
    }

    private static void InterlockedMax(ref int target, int value)
    {
        int current;
        while (value > (current = Volatile.Read(ref target)) && Interlocked.CompareExchange(ref target, value, current) != current)
        {
        }
    }

    private static void InterlockedMax(ref long target, long value)
    {
        long current;
        while (value > (current = Volatile.Read(ref target)) && Interlocked.CompareExchange(ref target, value, current) != current)
        {
        }
    }
}
