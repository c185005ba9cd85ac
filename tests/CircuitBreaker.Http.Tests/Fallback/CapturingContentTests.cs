using System.Net;
using Microsoft.Extensions.Time.Testing;

namespace CircuitBreaker.Http.Tests.Fallback;

public sealed class CapturingContentTests : IDisposable
{
    private const string Key = "http://a.test/";
    private readonly FakeTimeProvider _time = new();
    private readonly ResponseCache _cache;

    public CapturingContentTests() => _cache = new(100, 10_000_000, _time);

    public void Dispose() => _cache.Dispose();

    [Fact]
    public async Task BufferedRead_StoresTheWholeBody()
    {
        using var response = Wrap(new ByteArrayContent("hello world"u8.ToArray()), maxBytes: 1000);

        await response.Content.LoadIntoBufferAsync();

        Assert.Equal("hello world", await response.Content.ReadAsStringAsync());
        Assert.Equal("hello world"u8.ToArray(), Stored()!.Body);
    }

    [Fact]
    public async Task StreamedReadToTheEnd_StoresTheBodyOfUnknownLength()
    {
        using var response = Wrap(new StreamContent(new NonSeekableStream(new byte[5000])), maxBytes: 10_000);
        Assert.Null(response.Content.Headers.ContentLength);

        await using (var stream = await response.Content.ReadAsStreamAsync())
        {
            await stream.CopyToAsync(Stream.Null);
        }

        Assert.Equal(5000, Stored()!.Body.Length);
    }

    [Fact]
    public async Task PartialRead_StoresNothing()
    {
        using var response = Wrap(new StreamContent(new NonSeekableStream(new byte[5000])), maxBytes: 10_000);

        await using (var stream = await response.Content.ReadAsStreamAsync())
        {
            var buffer = new byte[100];
            _ = await stream.ReadAsync(buffer);
        }

        Assert.Null(Stored());
    }

    [Fact]
    public async Task ReadOfExactlyTheAnnouncedLength_StoresWithoutReadingOnToTheEnd()
    {
        var inner = new StreamContent(new NonSeekableStream(new byte[300]));
        inner.Headers.ContentLength = 300;
        using var response = Wrap(inner, maxBytes: 1000);

        await using (var stream = await response.Content.ReadAsStreamAsync())
        {
            await stream.ReadExactlyAsync(new byte[300]);
        }

        Assert.Equal(300, Stored()!.Body.Length);
    }

    [Fact]
    public async Task BodyLargerThanMaxEntryBytes_IsStillDeliveredButNotStored()
    {
        var body = Enumerable.Range(0, 5000).Select(i => (byte)i).ToArray();
        using var response = Wrap(new StreamContent(new NonSeekableStream(body)), maxBytes: 4999);

        var read = await response.Content.ReadAsByteArrayAsync();

        Assert.Equal(body, read);
        Assert.Null(Stored());
    }

    [Fact]
    public void SynchronousRead_StoresTheBody()
    {
        using var response = Wrap(new ByteArrayContent([1, 2, 3]), maxBytes: 10);

        using (var stream = response.Content.ReadAsStream())
        {
            stream.CopyTo(Stream.Null);
        }

        Assert.Equal([1, 2, 3], Stored()!.Body);
    }

    [Fact]
    public void Wrapping_KeepsTheContentHeaders()
    {
        var inner = new StringContent("{}", System.Text.Encoding.UTF8, "application/json");
        inner.Headers.ContentLanguage.Add("en");

        using var response = Wrap(inner, maxBytes: 10);

        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(["en"], response.Content.Headers.ContentLanguage);
        Assert.Equal(2, response.Content.Headers.ContentLength);
    }

    [Fact]
    public void Head_WithAnAnnouncedLengthAboveMaxEntryBytes_IsStoredWithItsContentLength()
    {
        using var response = HeadResponse(contentLength: 5000);

        new ResponseCapture(_cache, Key, new ResponseHead(response), [], maxBytes: 1000, bodiless: true).Complete();

        using var request = new HttpRequestMessage(HttpMethod.Head, Key);
        using var replayed = Stored()!.ToResponse(request, TimeSpan.Zero);
        Assert.Equal(5000, replayed.Content.Headers.ContentLength);
    }

    [Fact]
    public void Head_WithAnAnnouncedLengthWithinMaxEntryBytes_AllocatesNoBufferOfThatLength()
    {
        using var response = HeadResponse(contentLength: 1_000_000);
        new ResponseCapture(_cache, "http://a.test/warm-up", new ResponseHead(response), [], maxBytes: 1_048_576, bodiless: true).Complete();

        var before = GC.GetAllocatedBytesForCurrentThread();
        new ResponseCapture(_cache, Key, new ResponseHead(response), [], maxBytes: 1_048_576, bodiless: true).Complete();
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.NotNull(Stored());
        Assert.InRange(allocated, 0, 100_000);
    }

    [Fact]
    public void AnnouncedBodyLargerThanMaxTotalBytes_AllocatesNoBufferForIt()
    {
        // MaxEntryBytes is not bounded by MaxTotalBytes (int.MaxValue is how "no limit per entry" is written): a body the
        // whole cache cannot hold is never stored, so buffering it would only hold its length in memory for nothing.
        using var cache = new ResponseCache(maxEntries: 100, maxTotalBytes: 1_000_000, _time);
        using var response = new HttpResponseMessage(HttpStatusCode.OK) { Content = new ByteArrayContent([]) };
        response.Content.Headers.ContentLength = 64 * 1024 * 1024;

        var before = GC.GetAllocatedBytesForCurrentThread();
        _ = new ResponseCapture(cache, Key, new ResponseHead(response), [], maxBytes: int.MaxValue);
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.InRange(allocated, 0, 100_000);
    }

    [Fact]
    public void AnnouncedBodyLargerThanTheLargestArray_IsNotCapturedRatherThanThrowing()
    {
        using var cache = new ResponseCache(maxEntries: 100, maxTotalBytes: long.MaxValue, _time);
        using var response = new HttpResponseMessage(HttpStatusCode.OK) { Content = new ByteArrayContent([]) };
        response.Content.Headers.ContentLength = Array.MaxLength + 1L;

        var capture = new ResponseCapture(cache, Key, new ResponseHead(response), [], maxBytes: int.MaxValue);
        capture.Append([1, 2, 3]);
        capture.Complete();

        Assert.Equal(0, cache.Count);
    }

    private static HttpResponseMessage HeadResponse(long contentLength)
    {
        var response = new HttpResponseMessage(HttpStatusCode.OK)
        {
            Content = new ByteArrayContent([]),
            RequestMessage = new HttpRequestMessage(HttpMethod.Head, Key),
        };
        response.Content.Headers.ContentLength = contentLength;
        return response;
    }

    private HttpResponseMessage Wrap(HttpContent inner, int maxBytes)
    {
        var response = new HttpResponseMessage(HttpStatusCode.OK) { Content = inner };
        var capture = new ResponseCapture(_cache, Key, new ResponseHead(response), [], maxBytes);
        response.Content = new CapturingContent(inner, capture);
        return response;
    }

    private CachedResponse? Stored()
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "http://a.test/");
        return _cache.Find(request, TimeSpan.FromMinutes(1), _cache.Clock.Now);
    }

    /// <summary>A stream of unknown length, as a chunked response body is.</summary>
    private sealed class NonSeekableStream(byte[] data) : MemoryStream(data)
    {
        public override bool CanSeek => false;
    }
}
