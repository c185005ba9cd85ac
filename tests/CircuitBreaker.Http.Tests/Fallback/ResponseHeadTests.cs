using System.Net;

namespace CircuitBreaker.Http.Tests.Fallback;

public sealed class ResponseHeadTests
{
    [Fact]
    public void Head_OfACapturedResponse_AllocatesLittleBeyondTheCopiesItKeeps()
    {
        // Taken of every response the cache captures. What it keeps here: itself, two header arrays, two entries
        // with a value array each, about 200 bytes. It used to build a whole HttpResponseMessage for the standard
        // reason phrase and copy the headers through LINQ, about 900.
        using var request = new HttpRequestMessage(HttpMethod.Get, "http://users.test/users/42");
        using var response = new HttpResponseMessage(HttpStatusCode.OK) { RequestMessage = request, Content = new ByteArrayContent(new byte[9]) };
        response.Headers.ETag = new System.Net.Http.Headers.EntityTagHeaderValue("\"v1\"");
        response.Content.Headers.TryAddWithoutValidation("Content-Type", "application/json");
        _ = response.Content.Headers.ContentLength; // read by the caller's buffering: Content-Length is a header of its own from now on
        var head = new ResponseHead(response);

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 100; i++)
        {
            head = new ResponseHead(response);
        }

        var allocated = (GC.GetAllocatedBytesForCurrentThread() - before) / 100.0;

        Assert.InRange(allocated, 0, 400);
        Assert.Equal("ETag", Assert.Single(head.Headers).Key);
        Assert.Equal("Content-Type", Assert.Single(head.ContentHeaders).Key); // the body's own length is not kept
        Assert.Null(head.ReasonPhrase);
        Assert.Equal(9, head.ContentLength);
    }

    [Fact]
    public void Head_KeepsACustomReasonPhrase_AndNotAStandardOne()
    {
        using var custom = new HttpResponseMessage(HttpStatusCode.OK) { ReasonPhrase = "Fine" };
        using var standard = new HttpResponseMessage((HttpStatusCode)299) { ReasonPhrase = null };

        Assert.Equal("Fine", new ResponseHead(custom).ReasonPhrase);
        Assert.Null(new ResponseHead(standard).ReasonPhrase);
    }
}
