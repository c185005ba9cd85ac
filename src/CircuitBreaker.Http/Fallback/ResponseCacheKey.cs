using System.Buffers;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;

namespace CircuitBreaker.Http;

/// <summary>
/// Decides what the fallback cache may store and builds its keys. The key holds the method (left out for GET),
/// the absolute URI, a hash of the request's credentials and the <c>Host</c> header when the request sets one, so a
/// response is only replayed to a caller with the same credentials (or, like the one it was fetched for, with none)
/// asking the same virtual host; the credentials themselves are never kept.
/// </summary>
internal static class ResponseCacheKey
{
    // RFC 9110 §5.6.2: the characters of a token, such as a header name.
    private static readonly SearchValues<char> TokenChars =
        SearchValues.Create("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz");

    public static bool IsCacheableRequest(HttpRequestMessage request, bool excludeCredentials) =>
        (request.Method == HttpMethod.Get || request.Method == HttpMethod.Head)
        && request.RequestUri is { IsAbsoluteUri: true }
        && (request.Headers.NonValidated.Count == 0 || (request.Headers.CacheControl?.NoStore != true && !(excludeCredentials && HasCredentials(request))));

    public static bool IsCacheableResponse(HttpResponseMessage response) =>
        response.IsSuccessStatusCode
        && response.StatusCode != System.Net.HttpStatusCode.PartialContent
        && CacheControlAllowsStoring(response.Headers)
        && !response.Headers.Contains("Set-Cookie")
        && VaryAllowsStoring(response.Headers);

    /// <param name="request">The request.</param>
    /// <param name="knownWithoutCredentials">
    /// Whether the caller already knows the request carries none (it passed <see cref="IsCacheableRequest"/> with
    /// credentials excluded), which saves looking for the headers a second time on every fallback.
    /// </param>
    /// <returns>The key.</returns>
    public static string For(HttpRequestMessage request, bool knownWithoutCredentials = false)
    {
        if (request.Headers.NonValidated.Count == 0)
        {
            return For(request.Method, request.RequestUri!, null, null, null);
        }

        var host = HeaderValue(request, "Host");
        return knownWithoutCredentials || !HasCredentials(request)
            ? For(request.Method, request.RequestUri!, host, null, null)
            : For(request.Method, request.RequestUri!, host, HeaderValue(request, "Authorization"), HeaderValue(request, "Cookie"));
    }

    /// <summary>
    /// The key of a request with these method, URI, <c>Host</c> header and credentials (each <see langword="null"/>
    /// when the request has no such header).
    /// </summary>
    public static string For(HttpMethod method, Uri uri, string? host, string? authorization, string? cookie)
    {
        // A GET is keyed by its absolute URI alone, a string the Uri already holds, so that a replay builds no key;
        // other methods are prefixed, which no absolute URI can be mistaken for (it starts with its scheme).
        var absolute = uri.AbsoluteUri;
        var key = method == HttpMethod.Get ? absolute : string.Concat(method.Method, " ", absolute);
        if (authorization is not null || cookie is not null)
        {
            var credentials = $"{authorization}\n{cookie}";
            key = $"{key} {Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(credentials)))}";
        }

        // A Host header is what the server is sent in place of the URI's host: the same URI then names another virtual
        // host's resource (a gateway reached by address, one tenant per host name), which no other Host may be served.
        // After the hash, whose hex digits hold neither a space nor 'H', so no Host value can pass for credentials.
        return host is null ? key : string.Concat(key, " Host:", host);
    }

    public static string? HeaderValue(HttpRequestMessage request, string name) =>
        request.Headers.NonValidated.TryGetValues(name, out var values) ? Joined(values) : null;

    /// <summary>A header's values as one string, the form both sides of a <c>Vary</c> comparison and the key's credentials take.</summary>
    public static string Joined(HeaderStringValues values) => string.Join(", ", values);

    // One cache serves every caller of the client, so it is a shared cache, which may not keep a response marked
    // private (RFC 9111 §5.2.2.7), even when the directive names only some fields. A no-cache response may not be
    // reused without asking the origin (§5.2.2.4), and the cache answers exactly when the origin cannot be asked; the
    // form naming fields, which would allow a reuse without them, is refused too, as the simpler safe reading. A Cache-Control line the parser
    // rejects could hide either directive, so it forbids storing too. Each line is read on its own: the typed
    // CacheControl merges the lines it can read and silently drops the others, so max-age=60 on one line would hide
    // an unreadable line holding private. Most responses have none, and for them the one lookup is all.
    private static bool CacheControlAllowsStoring(HttpResponseHeaders headers)
    {
        if (!headers.NonValidated.TryGetValues("Cache-Control", out var lines))
        {
            return true;
        }

        foreach (var line in lines)
        {
            if (!CacheControlHeaderValue.TryParse(line, out var value) || value is null || value.NoStore || value.Private || value.NoCache)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// The oldest <paramref name="response"/> may be when replayed, from its own headers: <see cref="TimeSpan.MaxValue"/>
    /// (only <c>MaxAge</c> bounds it) unless it forbids being served stale. A cache answering while the origin cannot be
    /// asked serves stale answers, which must-revalidate, proxy-revalidate and, for a shared cache such as this one,
    /// s-maxage forbid (RFC 9111 §4.2.4, §5.2.2.2, §5.2.2.8, §5.2.2.10). Such a response is replayed only while fresh:
    /// for its s-maxage, else its max-age, else Expires less Date (§4.2.1), else not at all.
    /// </summary>
    public static TimeSpan MaxReplayAge(HttpResponseMessage response)
    {
        // Every line parsed on its own before this is asked (CacheControlAllowsStoring), so the merged value is all of them.
        if (!response.Headers.NonValidated.Contains("Cache-Control")
            || response.Headers.CacheControl is not { } control
            || !(control.MustRevalidate || control.ProxyRevalidate || control.SharedMaxAge is not null))
        {
            return TimeSpan.MaxValue;
        }

        if ((control.SharedMaxAge ?? control.MaxAge) is { } lifetime)
        {
            return lifetime;
        }

        // Without a Date, the lifetime would start at an arrival time the entry does not keep; an origin with a clock
        // sends one (RFC 9110 §6.6.1), and a response without it is simply not replayed.
        return response.Content?.Headers.Expires is { } expires && response.Headers.Date is { } date && expires > date
            ? expires - date
            : TimeSpan.Zero;
    }

    // Vary: * forbids storing. So does a Vary that HttpHeaders cannot parse, which its typed Vary reads as no Vary at
    // all (the whole line is dropped): it may name the very header the answer depends on, a tenant's, and the entry
    // would be replayed to every caller, as an unreadable Cache-Control could hide private. Every name must be a token.
    private static bool VaryAllowsStoring(HttpResponseHeaders headers)
    {
        if (!headers.NonValidated.TryGetValues("Vary", out var lines))
        {
            return true;
        }

        foreach (var line in lines)
        {
            foreach (var range in line.AsSpan().Split(','))
            {
                var name = line.AsSpan()[range].Trim(" \t");
                if (name is "*" || name.ContainsAnyExcept(TokenChars))
                {
                    return false;
                }
            }
        }

        return true;
    }

    // A request without headers has no credentials to look for; each lookup by name costs a parse of the name.
    private static bool HasCredentials(HttpRequestMessage request) =>
        request.Headers.NonValidated.Count > 0
        && (request.Headers.NonValidated.Contains("Authorization") || request.Headers.NonValidated.Contains("Cookie"));
}
