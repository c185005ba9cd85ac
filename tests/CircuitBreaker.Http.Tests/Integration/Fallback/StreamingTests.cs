using System.Text;
using CircuitBreaker.Http.Tests.TestSupport;
using static CircuitBreaker.Http.Tests.Integration.Fallback.FallbackSupport;

namespace CircuitBreaker.Http.Tests.Integration.Fallback;

/// <summary>Capturing bodies for the cache does not turn streaming callers into buffering ones.</summary>
public class StreamingTests
{
    private const string Config = """{ "CircuitBreaker": { "FailureThreshold": 1, "Fallback": { "Cache": { "Enabled": true } } } }""";

    // A bound on real waits, so that a regression fails instead of hanging; nothing waits on breaker state.
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task ResponseHeadersRead_CallerReadsTheFirstChunkBeforeTheServerFinishes_AndTheWholeBodyIsCachedOnceRead()
    {
        await using var server = await KestrelDownstream.StartAsync();
        using var side = ClientSide.ForClient(JsonConfiguration.From(Config), server);
        using var client = side.CreateClient();
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        server.Behavior = OkInTwoParts("first|", release.Task, "second");
        try
        {
            using (var response = await client.GetAsync("feed", HttpCompletionOption.ResponseHeadersRead).WaitAsync(Patience))
            {
                var stream = await response.Content.ReadAsStreamAsync();
                Assert.Equal("first|", await ReadExactlyAsync(stream, "first|".Length));
                Assert.False(release.Task.IsCompleted); // the server is still holding the rest
                Assert.Equal(0, CacheOf(side).Count);

                release.SetResult();
                using var reader = new StreamReader(stream, Encoding.UTF8);
                Assert.Equal("second", await reader.ReadToEndAsync().WaitAsync(Patience));
            }

            Assert.Equal(1, CacheOf(side).Count);
            await OpenAsync(side, client, server);

            using var replayed = await client.GetAsync("feed");
            Assert.Equal("cache", Header(replayed, FallbackHeader));
            Assert.Equal("first|second", await replayed.Content.ReadAsStringAsync());
        }
        finally
        {
            release.TrySetResult();
        }
    }

    [Fact]
    public async Task ResponseHeadersRead_CallerThatDisposesTheResponseBeforeTheEnd_LeavesNothingInTheCache()
    {
        await using var server = await KestrelDownstream.StartAsync();
        using var side = ClientSide.ForClient(JsonConfiguration.From(Config), server);
        using var client = side.CreateClient();
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        server.Behavior = OkInTwoParts("first|", release.Task, "second");
        try
        {
            using (var response = await client.GetAsync("feed", HttpCompletionOption.ResponseHeadersRead).WaitAsync(Patience))
            {
                var stream = await response.Content.ReadAsStreamAsync();
                Assert.Equal("first|", await ReadExactlyAsync(stream, "first|".Length));
            }

            release.SetResult();
            Assert.Equal(0, CacheOf(side).Count);
            await OpenAsync(side, client, server);

            await Assert.ThrowsAsync<CircuitOpenException>(() => client.GetAsync("feed"));
        }
        finally
        {
            release.TrySetResult();
        }
    }

    [Fact]
    public async Task ResponseHeadersRead_CallerThatStopsReadingPartWay_LeavesNothingInTheCache()
    {
        await using var server = await KestrelDownstream.StartAsync();
        using var side = ClientSide.ForClient(JsonConfiguration.From(Config), server);
        using var client = side.CreateClient();
        server.Behavior = OkChunked("0123456789");

        // Stops after 4 of the 10 bytes and disposes the response.
        using (var response = await client.GetAsync("feed", HttpCompletionOption.ResponseHeadersRead))
        {
            var stream = await response.Content.ReadAsStreamAsync();
            Assert.Equal("0123", await ReadExactlyAsync(stream, 4));
        }

        Assert.Equal(0, CacheOf(side).Count);
    }

    [Fact]
    public async Task ResponseHeadersRead_CallerThatDisposesWithoutReading_LeavesNothingInTheCache_AndTheNextFullReadIsCached()
    {
        await using var server = await KestrelDownstream.StartAsync();
        using var side = ClientSide.ForClient(JsonConfiguration.From(Config), server);
        using var client = side.CreateClient();
        server.Behavior = OkChunked("part1,", "part2");

        using (await client.GetAsync("feed", HttpCompletionOption.ResponseHeadersRead))
        {
        }

        Assert.Equal(0, CacheOf(side).Count);
        using (var response = await client.GetAsync("feed", HttpCompletionOption.ResponseHeadersRead))
        {
            await using var stream = await response.Content.ReadAsStreamAsync();
            using var copy = new MemoryStream();
            await stream.CopyToAsync(copy);
            Assert.Equal("part1,part2", Encoding.UTF8.GetString(copy.ToArray()));
        }

        Assert.Equal(1, CacheOf(side).Count);
    }

    private static async Task<string> ReadExactlyAsync(Stream stream, int count)
    {
        var buffer = new byte[count];
        await stream.ReadExactlyAsync(buffer).AsTask().WaitAsync(Patience);
        return Encoding.UTF8.GetString(buffer);
    }
}
