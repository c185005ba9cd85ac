using System.Net;
using System.Net.Sockets;
using System.Text;
using CircuitBreaker.Http.Tests.TestSupport;
using Microsoft.Extensions.DependencyInjection;
using static CircuitBreaker.Http.Tests.Integration.Fallback.FallbackSupport;

namespace CircuitBreaker.Http.Tests.Integration.Fallback;

/// <summary>
/// Edge cases of the fallback cache that once lost the last good response, or replayed one it should not have:
/// HEAD responses, a full cache, a custom fallback that disposes the cached copy it was offered, responses
/// that were already old when they arrived, headers the primary handler adds below the breaker, and a chunked body
/// that also announced a length.
/// </summary>
public class CacheEdgeCaseTests
{
    private const string SmallFullCache = """
        {
          "CircuitBreaker": {
            "FailureThreshold": 1,
            "Fallback": { "Cache": { "Enabled": true, "MaxEntries": 10, "MaxTotalBytes": 10000 } }
          }
        }
        """;

    // The break (30 s by default) outlasts the test's steps of the clock, so the circuit stays open throughout.
    private const string WithMaxAgeOfTwoMinutes = """
        {
          "CircuitBreaker": {
            "FailureThreshold": 1,
            "Fallback": {
              "Cache": { "Enabled": true, "MaxAge": "00:02:00" },
              "Degraded": { "StatusCode": 503, "ContentType": "text/plain", "Body": "degraded" }
            }
          }
        }
        """;

    [Fact]
    public async Task HeadResponse_WhileOpen_IsReplayedFromTheCache()
    {
        await using var server = await KestrelDownstream.StartAsync();
        using var side = ClientSide.ForClient(
            JsonConfiguration.From("""{ "CircuitBreaker": { "FailureThreshold": 1, "Fallback": { "Cache": { "Enabled": true } } } }"""),
            server);
        using var client = side.CreateClient();
        using (var head = new HttpRequestMessage(HttpMethod.Head, "users/1"))
        using (var response = await client.SendAsync(head))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        await OpenAsync(side, client, server);

        using var again = new HttpRequestMessage(HttpMethod.Head, "users/1");
        using var replayed = await client.SendAsync(again);
        Assert.Equal("cache", Header(replayed, FallbackHeader));
    }

    [Fact]
    public async Task HeadOfAResourceLargerThanMaxEntryBytes_WhileOpen_IsReplayedFromTheCache_WithItsContentLength()
    {
        await using var server = await KestrelDownstream.StartAsync();
        using var side = ClientSide.ForClient(
            JsonConfiguration.From("""{ "CircuitBreaker": { "FailureThreshold": 1, "Fallback": { "Cache": { "Enabled": true, "MaxEntryBytes": 1000 } } } }"""),
            server);
        using var client = side.CreateClient();
        server.Behavior = context =>
        {
            // A HEAD announces the length of the body a GET would get, and sends none.
            context.Response.StatusCode = 200;
            context.Response.ContentLength = 5000;
            return Task.CompletedTask;
        };
        using (var head = new HttpRequestMessage(HttpMethod.Head, "files/big"))
        using (var response = await client.SendAsync(head))
        {
            Assert.Equal(5000, response.Content.Headers.ContentLength);
        }

        await OpenAsync(side, client, server);

        using var again = new HttpRequestMessage(HttpMethod.Head, "files/big");
        using var replayed = await client.SendAsync(again);
        Assert.Equal("cache", Header(replayed, FallbackHeader));
        Assert.Equal(5000, replayed.Content.Headers.ContentLength);
    }

    [Fact]
    public async Task ResponseVaryingOnAcceptEncoding_WithAutomaticDecompression_IsReplayedWhileOpen()
    {
        // SocketsHttpHandler adds Accept-Encoding itself when it decompresses, below the breaker, and compressing
        // servers answer Vary: Accept-Encoding: the header is in no request that reaches the breaker, so it
        // must not be in the entry's Vary values either.
        await using var server = await KestrelDownstream.StartAsync();
        using var side = ClientSide.Create(
            JsonConfiguration.From(WithMaxAgeOfTwoMinutes),
            s => s.AddHttpClient("users", c => c.BaseAddress = server.BaseAddress)
                .AddCircuitBreaker()
                .ConfigurePrimaryHttpMessageHandler(() => new SocketsHttpHandler { AutomaticDecompression = DecompressionMethods.All }));
        using var client = side.CreateClient();
        server.Behavior = OkFrom(r => $"sent {r.Headers.AcceptEncoding}", ("Vary", "Accept-Encoding"));
        Assert.Equal("sent gzip, deflate, br", await FetchAsync(client, "page"));
        await OpenAsync(side, client, server);

        using var replayed = await GetAsync(client, "page");
        using var otherEncoding = await GetAsync(client, "page", ("Accept-Encoding", "identity"));

        Assert.Equal("cache", Header(replayed, FallbackHeader));
        Assert.Equal("sent gzip, deflate, br", await replayed.Content.ReadAsStringAsync());
        Assert.Equal("degraded", Header(otherEncoding, FallbackHeader)); // Vary is still honoured for what the caller sends
    }

    [Fact]
    public async Task ResponseAlreadyOlderThanMaxAgeWhenReceived_IsNotReplayed()
    {
        await using var server = await KestrelDownstream.StartAsync();
        using var side = ClientSide.ForClient(JsonConfiguration.From(WithMaxAgeOfTwoMinutes), server);
        using var client = side.CreateClient();
        server.Behavior = Ok("from the CDN", ("Age", "3600"));
        Assert.Equal("from the CDN", await FetchAsync(client, "users/1"));
        await OpenAsync(side, client, server);

        using var response = await client.GetAsync("users/1");

        Assert.Equal("degraded", Header(response, FallbackHeader));
    }

    [Fact]
    public async Task ResponseAlreadyOlderThanMaxAgeWhenReceived_LeavesTheGoodEntryOfItsUrlInPlace()
    {
        await using var server = await KestrelDownstream.StartAsync();
        using var side = ClientSide.ForClient(JsonConfiguration.From(WithMaxAgeOfTwoMinutes), server);
        using var client = side.CreateClient();
        server.Behavior = Ok("from the origin");
        Assert.Equal("from the origin", await FetchAsync(client, "users/1"));
        server.Behavior = Ok("from the CDN", ("Age", "3600"));
        Assert.Equal("from the CDN", await FetchAsync(client, "users/1"));
        await OpenAsync(side, client, server);

        using var response = await client.GetAsync("users/1");

        Assert.Equal("cache", Header(response, FallbackHeader));
        Assert.Equal("from the origin", await response.Content.ReadAsStringAsync());
    }

    [Theory]
    [InlineData("max-age=0, must-revalidate", null)] // stale on arrival
    [InlineData("max-age=60, must-revalidate", "60")] // fresh for 60 s, and already 60 s old
    [InlineData("no-cache", null)]
    public async Task ResponseThatMayNotBeServedStale_AndIsNoLongerFresh_LeavesTheGoodEntryOfItsUrlInPlace(string cacheControl, string? age)
    {
        await using var server = await KestrelDownstream.StartAsync();
        using var side = ClientSide.ForClient(JsonConfiguration.From(WithMaxAgeOfTwoMinutes), server);
        using var client = side.CreateClient();
        server.Behavior = Ok("from the origin");
        Assert.Equal("from the origin", await FetchAsync(client, "users/1"));
        server.Behavior = age is null ? Ok("must revalidate", ("Cache-Control", cacheControl)) : Ok("must revalidate", ("Cache-Control", cacheControl), ("Age", age));
        Assert.Equal("must revalidate", await FetchAsync(client, "users/1"));
        await OpenAsync(side, client, server);

        using var response = await client.GetAsync("users/1");

        Assert.Equal("cache", Header(response, FallbackHeader));
        Assert.Equal("from the origin", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task ResponseReceivedWithAnAge_IsReplayedWithThatAgePlusItsTimeInTheCache_UntilTogetherTheyPassMaxAge()
    {
        await using var server = await KestrelDownstream.StartAsync();
        using var side = ClientSide.ForClient(JsonConfiguration.From(WithMaxAgeOfTwoMinutes), server);
        using var client = side.CreateClient();
        server.Behavior = Ok("from the CDN", ("Age", "100"));
        Assert.Equal("from the CDN", await FetchAsync(client, "users/1"));
        await OpenAsync(side, client, server);

        side.Time.Advance(TimeSpan.FromSeconds(20));
        using (var replayed = await client.GetAsync("users/1"))
        {
            Assert.Equal("cache", Header(replayed, FallbackHeader));
            Assert.Equal("120", Header(replayed, "Age"));
        }

        side.Time.Advance(TimeSpan.FromSeconds(1));
        using var tooOld = await client.GetAsync("users/1");
        Assert.Equal("degraded", Header(tooOld, FallbackHeader));
    }

    [Fact]
    public async Task RefreshedResponse_WhenTheCacheIsFull_LeavesTheUrlCached()
    {
        await using var server = await KestrelDownstream.StartAsync();
        using var side = ClientSide.ForClient(JsonConfiguration.From(SmallFullCache), server);
        using var client = side.CreateClient();
        var grown = false;
        server.Behavior = OkFrom(r => grown && r.Path == "/u/0" ? new string('n', 1500) : $"old {r.Path}");
        for (var i = 0; i < 10; i++)
        {
            await FetchAsync(client, $"u/{i}");
        }

        Assert.Equal(10000, CacheOf(side).Charged); // full: 10 entries charged the minimum of 1000 bytes each
        grown = true;
        Assert.Equal(1500, (await FetchAsync(client, "u/0")).Length);
        await OpenAsync(side, client, server);

        using var replayed = await client.GetAsync("u/0");
        Assert.Equal(1500, (await replayed.Content.ReadAsStringAsync()).Length);
    }

    [Fact]
    public async Task NewResponse_WhenTheCacheIsFull_IsStored_AndTheLeastRecentlyUsedEntryMakesRoom()
    {
        await using var server = await KestrelDownstream.StartAsync();
        using var side = ClientSide.ForClient(JsonConfiguration.From(SmallFullCache), server);
        using var client = side.CreateClient();
        for (var i = 0; i <= 10; i++)
        {
            await FetchAsync(client, $"u/{i}");
        }

        await OpenAsync(side, client, server);

        using var newest = await client.GetAsync("u/10");
        Assert.Equal("cache", Header(newest, FallbackHeader));
        Assert.InRange(CacheOf(side).Count, 1, 10);
    }

    [Fact]
    public async Task Custom_ThatDisposesTheCachedResponseAndDeclines_StillLetsTheCacheServeAReadableResponse()
    {
        await using var server = await KestrelDownstream.StartAsync();
        using var side = ClientSide.Create(
            JsonConfiguration.From("""{ "CircuitBreaker": { "FailureThreshold": 1, "Fallback": { "Cache": { "Enabled": true } } } }"""),
            services =>
            {
                services.AddHttpClient("users", c => c.BaseAddress = server.BaseAddress).AddCircuitBreaker();
                services.Configure<CircuitBreakerOptions>("users", o => o.Fallback.OnOpen = async context =>
                {
                    // Inspects the cached copy it was given, the natural way, and declines.
                    using var cached = context.CachedResponse;
                    _ = cached is null ? null : await cached.Content.ReadAsStringAsync(context.CancellationToken);
                    return null;
                });
            });
        using var client = side.CreateClient();
        Assert.Equal("ok", await FetchAsync(client, "users/1"));
        await OpenAsync(side, client, server);

        using var response = await client.GetAsync("users/1");
        Assert.Equal("cache", Header(response, FallbackHeader));
        Assert.Equal("ok", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task ChunkedResponseThatAlsoSendsAContentLength_IsStoredWhole_NotCutAtThatLength()
    {
        // RFC 9112 §6.3: Transfer-Encoding overrides a Content-Length sent with it, and SocketsHttpHandler reads the whole
        // chunked body, but leaves the header in the response's content headers. Some servers and proxies send both.
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var baseAddress = new Uri($"http://127.0.0.1:{((IPEndPoint)listener.LocalEndpoint).Port}/");
        var secondChunk = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var serving = ServeRawAsync(listener, async (path, stream) =>
        {
            if (path == "/__fail")
            {
                await stream.WriteAsync("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"u8.ToArray());
                return;
            }

            await stream.WriteAsync("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\n01234\r\n"u8.ToArray());
            await secondChunk.Task;
            await stream.WriteAsync("5\r\n56789\r\n0\r\n\r\n"u8.ToArray());
        });
        using var side = ClientSide.Create(
            JsonConfiguration.From("""{ "CircuitBreaker": { "FailureThreshold": 1, "Fallback": { "Cache": { "Enabled": true } } } }"""),
            s => s.AddHttpClient("users", c => c.BaseAddress = baseAddress).AddCircuitBreaker());
        using var client = side.CreateClient();

        using (var response = await client.GetAsync("feed", HttpCompletionOption.ResponseHeadersRead))
        {
            var stream = await response.Content.ReadAsStreamAsync();
            var first = new byte[5];
            await stream.ReadExactlyAsync(first).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
            secondChunk.SetResult();
            using var reader = new StreamReader(stream, Encoding.UTF8);
            Assert.Equal("0123456789", Encoding.UTF8.GetString(first) + await reader.ReadToEndAsync().WaitAsync(TimeSpan.FromSeconds(10)));
        }

        using (var failed = await client.GetAsync("__fail"))
        {
            Assert.Equal(CircuitState.Open, side.Circuit("users", $"http://127.0.0.1:{baseAddress.Port}").State);
        }

        using var replayed = await client.GetAsync("feed");
        Assert.Equal("cache", Header(replayed, FallbackHeader));
        Assert.Equal("0123456789", await replayed.Content.ReadAsStringAsync());
        listener.Stop();
        await serving;
    }

    /// <summary>A raw HTTP/1.1 server that answers one request per connection with whatever <paramref name="answer"/> writes, until the listener stops.</summary>
    private static async Task ServeRawAsync(TcpListener listener, Func<string, NetworkStream, Task> answer)
    {
        while (true)
        {
            Socket socket;
            try
            {
                socket = await listener.AcceptSocketAsync();
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException or InvalidOperationException) // stopped
            {
                return;
            }

            using (socket)
            {
                await using var stream = new NetworkStream(socket);
                var head = new StringBuilder();
                var buffer = new byte[4096];
                while (!head.ToString().Contains("\r\n\r\n", StringComparison.Ordinal))
                {
                    var read = await stream.ReadAsync(buffer);
                    if (read == 0)
                    {
                        break;
                    }

                    head.Append(Encoding.ASCII.GetString(buffer, 0, read));
                }

                await answer(head.ToString().Split(' ', 3)[1], stream);
            }
        }
    }
}
