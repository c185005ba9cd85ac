using System.Net;
using System.Text;
using CircuitBreaker.Http.Tests.TestSupport;
using Microsoft.AspNetCore.Http;

namespace CircuitBreaker.Http.Tests.Integration.Fallback;

/// <summary>What the fallback integration tests share: opening a circuit, reaching the client's cache, scripting the server.</summary>
internal static class FallbackSupport
{
    /// <summary>The header every fallback response carries.</summary>
    public const string FallbackHeader = "X-Circuit-Fallback";

    /// <summary>
    /// Opens the circuit of <paramref name="server"/> (as reached through <paramref name="address"/>, by default its
    /// base address) by one failed call to <c>/__fail</c>; the client's config must have <c>FailureThreshold: 1</c>.
    /// The server's behaviour is restored afterwards.
    /// </summary>
    public static async Task OpenAsync(ClientSide side, HttpClient client, KestrelDownstream server, Uri? address = null)
    {
        var baseAddress = address ?? server.BaseAddress;
        var behavior = server.Behavior;
        server.RespondWith(StatusCodes.Status500InternalServerError, "down");
        try
        {
            using var failed = await client.GetAsync(new Uri(baseAddress, "__fail"));
            Assert.Equal(HttpStatusCode.InternalServerError, failed.StatusCode);
        }
        finally
        {
            server.Behavior = behavior;
        }

        var authority = $"{baseAddress.Scheme}://{baseAddress.Host}:{baseAddress.Port}";
        Assert.Equal(CircuitState.Open, side.Circuit("users", authority).State);
    }

    /// <summary>The client's fallback cache, which must exist.</summary>
    public static ResponseCache CacheOf(ClientSide side, string clientName = "users") =>
        ((CircuitBreakerRegistry)side.Registry).GetClient(clientName).Cache
        ?? throw new InvalidOperationException($"Client '{clientName}' has no fallback cache.");

    /// <summary>The single value of a response header (or content header), or <see langword="null"/>.</summary>
    public static string? Header(HttpResponseMessage response, string name) =>
        response.Headers.NonValidated.TryGetValues(name, out var values) || response.Content.Headers.NonValidated.TryGetValues(name, out values)
            ? string.Join(", ", values)
            : null;

    /// <summary>Answers 200 with <paramref name="body"/> and the given headers, written without Content-Length (so chunked).</summary>
    public static Func<HttpContext, Task> Ok(string body, params (string Name, string Value)[] headers) => context =>
    {
        context.Response.StatusCode = StatusCodes.Status200OK;
        context.Response.ContentType = "text/plain";
        foreach (var (name, value) in headers)
        {
            context.Response.Headers.Append(name, value);
        }

        return context.Response.WriteAsync(body, context.RequestAborted);
    };

    /// <summary>Answers 200 with a body computed from the request, e.g. echoing a header.</summary>
    public static Func<HttpContext, Task> OkFrom(Func<HttpRequest, string> body, params (string Name, string Value)[] headers) => context =>
        Ok(body(context.Request), headers)(context);

    /// <summary>Answers 200 with <paramref name="body"/>, with a Content-Length.</summary>
    public static Func<HttpContext, Task> OkBytes(byte[] body) => context =>
    {
        context.Response.StatusCode = StatusCodes.Status200OK;
        context.Response.ContentType = "application/octet-stream";
        context.Response.ContentLength = body.Length;
        return context.Response.Body.WriteAsync(body, context.RequestAborted).AsTask();
    };

    /// <summary>
    /// Answers 200 with <paramref name="chunks"/> written one by one and flushed after each, without a
    /// Content-Length: a chunked body of unknown length, as ASP.NET Core sends streamed writes.
    /// </summary>
    public static Func<HttpContext, Task> OkChunked(params string[] chunks) => async context =>
    {
        context.Response.StatusCode = StatusCodes.Status200OK;
        context.Response.ContentType = "text/plain";
        foreach (var chunk in chunks)
        {
            await context.Response.Body.WriteAsync(Encoding.UTF8.GetBytes(chunk), context.RequestAborted);
            await context.Response.Body.FlushAsync(context.RequestAborted);
        }
    };

    /// <summary>
    /// Writes <paramref name="first"/>, flushes, then waits for <paramref name="release"/> (or the client going away)
    /// before writing <paramref name="rest"/>: a body whose end the test decides.
    /// </summary>
    public static Func<HttpContext, Task> OkInTwoParts(string first, Task release, string rest) => async context =>
    {
        context.Response.StatusCode = StatusCodes.Status200OK;
        context.Response.ContentType = "text/plain";
        await context.Response.Body.WriteAsync(Encoding.UTF8.GetBytes(first), context.RequestAborted);
        await context.Response.Body.FlushAsync(context.RequestAborted);
        await release.WaitAsync(context.RequestAborted);
        await context.Response.Body.WriteAsync(Encoding.UTF8.GetBytes(rest), context.RequestAborted);
    };

    /// <summary>A GET with optional request headers.</summary>
    public static HttpRequestMessage Get(string uri, params (string Name, string Value)[] headers)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, uri);
        foreach (var (name, value) in headers)
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }

        return request;
    }

    /// <summary>Sends a GET with optional headers and returns the response, read to the end.</summary>
    public static async Task<HttpResponseMessage> GetAsync(HttpClient client, string uri, params (string Name, string Value)[] headers)
    {
        using var request = Get(uri, headers);
        return await client.SendAsync(request);
    }

    /// <summary>Sends a GET with optional headers and returns the body of its (successful, real) response.</summary>
    public static async Task<string> FetchAsync(HttpClient client, string uri, params (string Name, string Value)[] headers)
    {
        using var response = await GetAsync(client, uri, headers);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Null(Header(response, FallbackHeader));
        return await response.Content.ReadAsStringAsync();
    }
}
