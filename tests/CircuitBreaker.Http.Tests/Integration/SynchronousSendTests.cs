using System.Diagnostics;
using System.Net;
using System.Text;
using CircuitBreaker.Http.Tests.TestSupport;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using static CircuitBreaker.Http.Tests.Integration.Fallback.FallbackSupport;

namespace CircuitBreaker.Http.Tests.Integration;

/// <summary>
/// The same scenarios through <see cref="HttpClient.SendAsync(HttpRequestMessage)"/> and the synchronous
/// <see cref="HttpClient.Send(HttpRequestMessage)"/>, over a real Kestrel server and SocketsHttpHandler, whose
/// synchronous path is its own: a synchronous caller gets what an asynchronous one gets, except where README says otherwise.
/// </summary>
public class SynchronousSendTests
{
    private static readonly TimeSpan Guard = TimeSpan.FromSeconds(10);

    /// <summary>Sends on a thread of its own when <paramref name="synchronous"/>, as the blocking call would otherwise block the test.</summary>
    private static Task<HttpResponseMessage> SendAsync(HttpClient client, HttpRequestMessage request, bool synchronous, HttpCompletionOption completion = HttpCompletionOption.ResponseContentRead, CancellationToken cancellationToken = default) =>
        synchronous
            ? Task.Run(() => client.Send(request, completion, cancellationToken), CancellationToken.None)
            : client.SendAsync(request, completion, cancellationToken);

    private static Task<HttpResponseMessage> GetAsync(HttpClient client, string uri, bool synchronous, HttpCompletionOption completion = HttpCompletionOption.ResponseContentRead, CancellationToken cancellationToken = default) =>
        SendAsync(client, new HttpRequestMessage(HttpMethod.Get, new Uri(uri, UriKind.RelativeOrAbsolute)), synchronous, completion, cancellationToken);

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task AttemptTimeout_IsAFailure_AndThrowsTheTimeout(bool synchronous)
    {
        await using var server = await KestrelDownstream.StartAsync();
        using var side = ClientSide.ForClient(JsonConfiguration.From("""{ "CircuitBreaker": { "FailureThreshold": 1, "AttemptTimeout": "00:00:02" } }"""), server);
        using var client = side.CreateClient();
        server.Hang();

        var arrived = server.NextRequestArrival();
        var call = GetAsync(client, "slow", synchronous);
        await arrived.WaitAsync(Guard);
        side.Time.Advance(TimeSpan.FromSeconds(2));

        var thrown = await Assert.ThrowsAsync<TaskCanceledException>(() => call.WaitAsync(Guard));
        var timeout = Assert.IsType<TimeoutException>(thrown.InnerException);
        Assert.Contains("AttemptTimeout", timeout.Message, StringComparison.Ordinal);
        Assert.Equal(CircuitState.Open, side.Circuit("users", server).State);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task CallerCancellation_IsNotCounted(bool synchronous)
    {
        await using var server = await KestrelDownstream.StartAsync();
        using var side = ClientSide.ForClient(JsonConfiguration.From("""{ "CircuitBreaker": { "FailureThreshold": 1 } }"""), server);
        using var client = side.CreateClient();
        server.Hang();

        using var cts = new CancellationTokenSource();
        var arrived = server.NextRequestArrival();
        var call = GetAsync(client, "slow", synchronous, cancellationToken: cts.Token);
        await arrived.WaitAsync(Guard);
        await cts.CancelAsync();

        var thrown = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => call.WaitAsync(Guard));
        Assert.IsNotType<TimeoutException>(thrown.InnerException);
        Assert.Equal(CircuitState.Closed, side.Circuit("users", server).State);
        Assert.Equal(0, side.Circuit("users", server).ConsecutiveFailures);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task HttpClientTimeout_IsNotCounted(bool synchronous)
    {
        await using var server = await KestrelDownstream.StartAsync();
        using var side = ClientSide.ForClient(JsonConfiguration.From("""{ "CircuitBreaker": { "FailureThreshold": 1 } }"""), server);
        using var client = side.CreateClient();
        client.Timeout = TimeSpan.FromMilliseconds(300);
        server.Hang();

        var thrown = await Assert.ThrowsAsync<TaskCanceledException>(() => GetAsync(client, "slow", synchronous).WaitAsync(Guard));
        Assert.IsType<TimeoutException>(thrown.InnerException);
        Assert.Equal(CircuitState.Closed, side.Circuit("users", server).State);
        Assert.Equal(0, side.Circuit("users", server).ConsecutiveFailures);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task RefusedConnection_AndServerErrors_AreFailures(bool synchronous)
    {
        await using var server = await KestrelDownstream.StartAsync();
        using var side = ClientSide.ForClient(JsonConfiguration.From("""{ "CircuitBreaker": { "FailureThreshold": 2 } }"""), server);
        using var client = side.CreateClient();
        server.RespondWith(503);
        using (var failed = await GetAsync(client, "x", synchronous))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, failed.StatusCode);
        }

        await server.StopAsync();
        await Assert.ThrowsAsync<HttpRequestException>(() => GetAsync(client, "x", synchronous).WaitAsync(Guard));

        Assert.Equal(CircuitState.Open, side.Circuit("users", server).State);
        var open = await Assert.ThrowsAsync<CircuitOpenException>(() => GetAsync(client, "x", synchronous));
        Assert.Equal(new CircuitKey("users", server.Authority), open.CircuitKey);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task ConnectTimeout_IsAFailure(bool synchronous)
    {
        await using var server = await KestrelDownstream.StartAsync();
        using var side = ClientSide.Create(
            JsonConfiguration.From("""{ "CircuitBreaker": { "FailureThreshold": 1 } }"""),
            s => s.AddHttpClient("users", c => c.BaseAddress = server.BaseAddress)
                .AddCircuitBreaker()
                .ConfigurePrimaryHttpMessageHandler(() => new SocketsHttpHandler
                {
                    ConnectTimeout = TimeSpan.FromMilliseconds(50),
                    ConnectCallback = async (_, token) =>
                    {
                        await Task.Delay(Timeout.Infinite, token);
                        throw new InvalidOperationException("unreachable");
                    },
                }));
        using var client = side.CreateClient();

        var thrown = await Assert.ThrowsAsync<TaskCanceledException>(() => GetAsync(client, "x", synchronous).WaitAsync(Guard));

        Assert.IsType<TimeoutException>(thrown.InnerException);
        Assert.Equal(CircuitState.Open, side.Circuit("users", server).State);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Probe_CancelledByTheCaller_FreesItsSlot_AndTheNextProbeClosesTheCircuit(bool synchronous)
    {
        await using var server = await KestrelDownstream.StartAsync();
        using var side = ClientSide.ForClient(JsonConfiguration.From("""{ "CircuitBreaker": { "FailureThreshold": 1, "BreakDuration": "00:00:30" } }"""), server);
        using var client = side.CreateClient();
        server.RespondWith(500);
        (await GetAsync(client, "x", synchronous)).Dispose();
        side.Time.Advance(TimeSpan.FromSeconds(30));

        server.Hang();
        using var cts = new CancellationTokenSource();
        var arrived = server.NextRequestArrival();
        var probe = GetAsync(client, "x", synchronous, cancellationToken: cts.Token);
        await arrived.WaitAsync(Guard);
        var rejected = await Assert.ThrowsAsync<CircuitOpenException>(() => GetAsync(client, "x", synchronous));
        Assert.Equal(CircuitState.HalfOpen, rejected.State);
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => probe.WaitAsync(Guard));

        server.RespondWith(200, "ok");
        using var next = await GetAsync(client, "x", synchronous);
        Assert.Equal(HttpStatusCode.OK, next.StatusCode);
        Assert.Equal(CircuitState.Closed, side.Circuit("users", server).State);
    }

    public enum Reading
    {
        Buffered,
        StreamRead,
        StreamCopyTo,
        ReadByte,
        ReadAsString,
    }

    public static TheoryData<bool, Reading, bool> Readings()
    {
        var data = new TheoryData<bool, Reading, bool>();
        foreach (var synchronous in new[] { false, true })
        {
            foreach (var reading in Enum.GetValues<Reading>())
            {
                data.Add(synchronous, reading, false);
                data.Add(synchronous, reading, true);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Readings))]
    public async Task Cache_CapturesTheBodyHoweverItIsRead_AndReplaysIt(bool synchronous, Reading reading, bool chunked)
    {
        await using var server = await KestrelDownstream.StartAsync();
        using var side = ClientSide.ForClient(JsonConfiguration.From("""{ "CircuitBreaker": { "FailureThreshold": 1, "Fallback": { "Cache": { "Enabled": true } } } }"""), server);
        using var client = side.CreateClient();
        var body = string.Concat(Enumerable.Repeat("0123456789", 1000));
        server.Behavior = chunked ? OkChunked(body[..4000], body[4000..]) : OkBytes(Encoding.UTF8.GetBytes(body));

        var completion = reading == Reading.Buffered ? HttpCompletionOption.ResponseContentRead : HttpCompletionOption.ResponseHeadersRead;
        using (var response = await GetAsync(client, "feed", synchronous, completion).WaitAsync(Guard))
        {
            Assert.Equal(body, Read(response, reading, synchronous));
        }

        Assert.Equal(1, CacheOf(side).Count);
        await OpenAsync(side, client, server);

        using var replayed = await GetAsync(client, "feed", synchronous);
        Assert.Equal("cache", Header(replayed, FallbackHeader));
        Assert.Equal(body, Read(replayed, reading, synchronous));
    }

    private static string Read(HttpResponseMessage response, Reading reading, bool synchronous)
    {
        if (!synchronous)
        {
            return response.Content.ReadAsStringAsync().GetAwaiter().GetResult();
        }

        switch (reading)
        {
            case Reading.StreamRead:
            {
                using var stream = response.Content.ReadAsStream();
                var buffer = new byte[1000];
                var all = new MemoryStream();
                int read;
                while ((read = stream.Read(buffer, 0, buffer.Length)) > 0)
                {
                    all.Write(buffer, 0, read);
                }

                return Encoding.UTF8.GetString(all.ToArray());
            }

            case Reading.StreamCopyTo:
            {
                using var stream = response.Content.ReadAsStream();
                var all = new MemoryStream();
                stream.CopyTo(all);
                return Encoding.UTF8.GetString(all.ToArray());
            }

            case Reading.ReadByte:
            {
                using var stream = response.Content.ReadAsStream();
                var all = new MemoryStream();
                int b;
                while ((b = stream.ReadByte()) >= 0)
                {
                    all.WriteByte((byte)b);
                }

                return Encoding.UTF8.GetString(all.ToArray());
            }

            default:
                return new StreamReader(response.Content.ReadAsStream()).ReadToEnd();
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Alternate_AnswersThroughItsOwnCircuit(bool synchronous)
    {
        await using var primary = await KestrelDownstream.StartAsync();
        await using var backup = await KestrelDownstream.StartAsync();
        backup.Behavior = Ok("from backup");
        using var side = ClientSide.ForClient(
            JsonConfiguration.From($$"""{ "CircuitBreaker": { "FailureThreshold": 1, "Fallback": { "AlternateBaseAddress": "{{backup.BaseAddress}}" } } }"""),
            primary);
        using var client = side.CreateClient();
        await OpenAsync(side, client, primary);

        using var request = new HttpRequestMessage(HttpMethod.Get, "u/1");
        using var response = await SendAsync(client, request, synchronous);

        Assert.Equal("alternate", Header(response, FallbackHeader));
        Assert.Equal("from backup", await response.Content.ReadAsStringAsync());
        Assert.Same(request, response.RequestMessage);
        Assert.Equal(new Uri(primary.BaseAddress, "u/1"), request.RequestUri);
        Assert.Equal(1, backup.RequestsTo("/u/1"));
        Assert.Equal(CircuitState.Closed, side.Circuit("users", backup).State);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Bulkhead_Full_ShedsTheCallWithLoadSheddingException(bool synchronous)
    {
        await using var server = await KestrelDownstream.StartAsync();
        using var side = ClientSide.ForClient(JsonConfiguration.From("""{ "CircuitBreaker": { "FailureThreshold": 1, "MaxConcurrentRequests": 1 } }"""), server);
        using var client = side.CreateClient();
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        server.RespondWhen(release.Task);
        var arrived = server.NextRequestArrival();
        var holding = client.GetAsync("hold");
        await arrived.WaitAsync(Guard);

        var shed = await Assert.ThrowsAsync<LoadSheddingException>(() => GetAsync(client, "x", synchronous).WaitAsync(Guard));
        release.SetResult();
        (await holding.WaitAsync(Guard)).Dispose();

        Assert.Equal(LoadSheddingReason.Concurrency, shed.Reason);
        Assert.Equal(CircuitState.Closed, side.Circuit("users", server).State);
        using var next = await GetAsync(client, "x", synchronous);
        Assert.Equal(HttpStatusCode.OK, next.StatusCode);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Probe_SpanParentsTheHttpSpan_AndTheCallersActivityIsCurrentAfterwards(bool synchronous)
    {
        await using var server = await KestrelDownstream.StartAsync();
        using var side = ClientSide.ForClient(JsonConfiguration.From("""{ "CircuitBreaker": { "FailureThreshold": 1, "BreakDuration": "00:00:30" } }"""), server);
        using var client = side.CreateClient();
        var port = server.Port;
        using var spans = new ActivityCollector(a => a.GetTagItem("server.port") is int p ? p == port : a.GetTagItem("server.port") as string == port.ToString(System.Globalization.CultureInfo.InvariantCulture), "System.Net.Http");
        server.RespondWith(500);
        (await GetAsync(client, "x", synchronous)).Dispose();
        side.Time.Advance(TimeSpan.FromSeconds(30));
        server.RespondWith(200, "ok");

        using var outer = new Activity("caller").Start();
        Activity? after = null;
        HttpResponseMessage response;
        if (synchronous)
        {
            response = await Task.Run(() =>
            {
                using var inner = new Activity("caller-thread").Start();
                var r = client.Send(new HttpRequestMessage(HttpMethod.Get, "x"));
                after = Activity.Current;
                Assert.Same(inner, after);
                return r;
            });
        }
        else
        {
            response = await client.GetAsync("x");
            after = Activity.Current;
            Assert.Same(outer, after);
        }

        response.Dispose();
        var probe = Assert.Single(spans.Stopped, a => a.OperationName == "circuit_breaker.probe");
        var http = spans.Stopped.Where(a => a.Source.Name == "System.Net.Http").ToList();
        Assert.Contains(http, a => a.ParentSpanId == probe.SpanId);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public async Task Transcript_OfTheSameScenario_IsTheSameForSynchronousAndAsynchronousCallers(int scenario)
    {
        var asynchronous = await (scenario == 1 ? TranscriptAsync(synchronous: false) : Transcript2Async(synchronous: false));
        var synchronous = await (scenario == 1 ? TranscriptAsync(synchronous: true) : Transcript2Async(synchronous: true));
        Assert.Equal(asynchronous, synchronous);
    }

    private static async Task<List<string>> Transcript2Async(bool synchronous)
    {
        await using var server = await KestrelDownstream.StartAsync();
        await using var backup = await KestrelDownstream.StartAsync();
        var json = $$"""
            {
              "CircuitBreaker": {
                "FailureThreshold": 1, "BreakDuration": "00:00:30", "RampUpDuration": "00:01:00",
                "Fallback": { "Cache": { "Enabled": true }, "AlternateBaseAddress": "http://localhost:{{backup.Port}}" },
                "Hosts": {
                  "localhost": { "Throttle": { "PermitsPerSecond": 0.001, "Burst": 1 } },
                  "127.0.0.2": { "Enforce": false }
                }
              }
            }
            """;
        using var transcript = new Transcript(json, server, backup);
        var (side, client) = (transcript.Side, transcript.Client);

        server.Behavior = Ok("alice");
        backup.Behavior = Ok("from backup");
        await transcript.StepAsync("head", () => SendAsync(client, new HttpRequestMessage(HttpMethod.Head, "h"), synchronous));
        await transcript.StepAsync("ok", () => GetAsync(client, "a", synchronous));
        server.RespondWith(500, "boom");
        await transcript.StepAsync("500", () => GetAsync(client, "b", synchronous));
        await transcript.StepAsync("head-cache", () => SendAsync(client, new HttpRequestMessage(HttpMethod.Head, "h"), synchronous));
        await transcript.StepAsync("alternate", () => GetAsync(client, "z", synchronous));
        await transcript.StepAsync("alternate-throttled", () => GetAsync(client, "y", synchronous));
        backup.RespondWith(500, "down too");
        side.Time.Advance(TimeSpan.FromSeconds(30));
        server.Behavior = Ok("bob");
        await transcript.StepAsync("probe", () => GetAsync(client, "a", synchronous));
        await transcript.StepAsync("ramp-1", () => GetAsync(client, "r1", synchronous));
        await transcript.StepAsync("ramp-2", () => GetAsync(client, "r2", synchronous));
        server.RespondWith(500, "boom");
        await transcript.StepAsync("observed-500", () => GetAsync(client, "http://127.0.0.2:" + transcript.ServerPort + "/o", synchronous));
        await transcript.StepAsync("observed-open", () => GetAsync(client, "http://127.0.0.2:" + transcript.ServerPort + "/o", synchronous));
        side.Registry.Isolate(new CircuitKey("users", "http://127.0.0.2:" + transcript.ServerPort));
        await transcript.StepAsync("observed-isolated", () => GetAsync(client, "http://127.0.0.2:" + transcript.ServerPort + "/o", synchronous));

        return transcript.Lines();
    }

    private static async Task<List<string>> TranscriptAsync(bool synchronous)
    {
        await using var server = await KestrelDownstream.StartAsync();
        await using var backup = await KestrelDownstream.StartAsync();
        var json = $$"""
            {
              "CircuitBreaker": {
                "FailureThreshold": 2, "BreakDuration": "00:00:30", "AttemptTimeout": "00:00:02", "MaxConcurrentRequests": 1,
                "Fallback": { "Cache": { "Enabled": true }, "Degraded": { "StatusCode": 503, "Body": "degraded", "ContentType": "text/plain" } },
                "Hosts": { "127.0.0.1": { "Throttle": { "PermitsPerSecond": 1000, "Burst": 1000 } } }
              }
            }
            """;
        using var transcript = new Transcript(json, server, backup);
        var (side, client) = (transcript.Side, transcript.Client);

        server.Behavior = Ok("alice");
        await transcript.StepAsync("ok", () => GetAsync(client, "a", synchronous));
        server.RespondWith(500, "boom");
        await transcript.StepAsync("500", () => GetAsync(client, "b", synchronous));
        server.Hang();
        await transcript.StepAsync("timeout", async () =>
        {
            var arrived = server.NextRequestArrival();
            var call = GetAsync(client, "c", synchronous);
            await arrived.WaitAsync(Guard);
            side.Time.Advance(TimeSpan.FromSeconds(2));
            return await call.WaitAsync(Guard);
        });
        await transcript.StepAsync("cache", () => GetAsync(client, "a", synchronous));
        await transcript.StepAsync("degraded", () => GetAsync(client, "z", synchronous));
        side.Time.Advance(TimeSpan.FromSeconds(30));
        server.Behavior = Ok("bob");
        await transcript.StepAsync("probe", () => GetAsync(client, "a", synchronous));
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        server.RespondWhen(release.Task);
        var arrivedHold = server.NextRequestArrival();
        var holding = client.GetAsync("hold");
        await Task.WhenAny(arrivedHold, holding).WaitAsync(Guard);
        await transcript.StepAsync("shed", () => GetAsync(client, "a", synchronous));
        release.SetResult();
        try
        {
            (await holding).Dispose();
        }
        catch (Exception ex)
        {
            transcript.Add("hold: " + ex.GetType().Name);
        }

        return transcript.Lines();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task AttemptTimeout_WhileConnecting_IsAFailure(bool synchronous)
    {
        await using var server = await KestrelDownstream.StartAsync();
        var connecting = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var side = ClientSide.Create(
            JsonConfiguration.From("""{ "CircuitBreaker": { "FailureThreshold": 1, "AttemptTimeout": "00:00:02" } }"""),
            s => s.AddHttpClient("users", c => c.BaseAddress = server.BaseAddress)
                .AddCircuitBreaker()
                .ConfigurePrimaryHttpMessageHandler(() => new SocketsHttpHandler
                {
                    ConnectCallback = async (_, token) =>
                    {
                        connecting.TrySetResult();
                        await Task.Delay(Timeout.Infinite, token);
                        throw new InvalidOperationException("unreachable");
                    },
                }));
        using var client = side.CreateClient();

        var call = GetAsync(client, "x", synchronous);
        await connecting.Task.WaitAsync(Guard);
        side.Time.Advance(TimeSpan.FromSeconds(2));
        var thrown = await Assert.ThrowsAsync<TaskCanceledException>(() => call.WaitAsync(Guard));

        Assert.IsType<TimeoutException>(thrown.InnerException);
        Assert.Equal(CircuitState.Open, side.Circuit("users", server).State);
    }

    [Theory]
    [MemberData(nameof(Readings))]
    public async Task Cache_CapturesADecompressedBodyHoweverItIsRead(bool synchronous, Reading reading, bool chunked)
    {
        await using var server = await KestrelDownstream.StartAsync();
        using var side = ClientSide.Create(
            JsonConfiguration.From("""{ "CircuitBreaker": { "FailureThreshold": 1, "Fallback": { "Cache": { "Enabled": true } } } }"""),
            s => s.AddHttpClient("users", c => c.BaseAddress = server.BaseAddress)
                .AddCircuitBreaker()
                .ConfigurePrimaryHttpMessageHandler(() => new SocketsHttpHandler { AutomaticDecompression = DecompressionMethods.All }));
        using var client = side.CreateClient();
        var body = string.Concat(Enumerable.Repeat("0123456789", 1000));
        var compressed = new MemoryStream();
        using (var gzip = new System.IO.Compression.GZipStream(compressed, System.IO.Compression.CompressionLevel.Fastest, leaveOpen: true))
        {
            gzip.Write(Encoding.UTF8.GetBytes(body));
        }

        server.Behavior = async context =>
        {
            context.Response.StatusCode = 200;
            context.Response.Headers.ContentEncoding = "gzip";
            if (!chunked)
            {
                context.Response.ContentLength = compressed.Length;
            }

            await context.Response.Body.WriteAsync(compressed.ToArray(), context.RequestAborted);
        };

        var completion = reading == Reading.Buffered ? HttpCompletionOption.ResponseContentRead : HttpCompletionOption.ResponseHeadersRead;
        using (var response = await GetAsync(client, "feed", synchronous, completion).WaitAsync(Guard))
        {
            Assert.Equal(body, Read(response, reading, synchronous));
        }

        Assert.Equal(1, CacheOf(side).Count);
        await OpenAsync(side, client, server);

        using var replayed = await GetAsync(client, "feed", synchronous);
        Assert.Equal("cache", Header(replayed, FallbackHeader));
        Assert.Equal(body, Read(replayed, reading, synchronous));
    }

    /// <summary>
    /// A client over <c>server</c> configured by a JSON document, and the record of one scenario through it: what the caller
    /// got at each step and the circuits' states after it, then every metric, span and log of the breaker, with the
    /// servers' ports replaced, so that a synchronous and an asynchronous run of the scenario compare equal.
    /// </summary>
    private sealed class Transcript : IDisposable
    {
        private readonly Telemetry.BreakerInstruments _meters;
        private readonly ActivityCollector _spans;
        private readonly string _backupPort;
        private readonly List<string> _lines = [];

        public Transcript(string json, KestrelDownstream server, KestrelDownstream backup)
        {
            Side = ClientSide.Create(JsonConfiguration.From(json), s =>
            {
                s.AddLogging(b => b.SetMinimumLevel(LogLevel.Trace));
                s.AddHttpClient("users", c => c.BaseAddress = server.BaseAddress).AddCircuitBreaker();
            });
            _meters = new Telemetry.BreakerInstruments(Side.Services);
            ServerPort = server.Port.ToString(System.Globalization.CultureInfo.InvariantCulture);
            _backupPort = backup.Port.ToString(System.Globalization.CultureInfo.InvariantCulture);
            string[] ports = [ServerPort, _backupPort];
            _spans = new ActivityCollector(a => ports.Contains(Convert.ToString(a.GetTagItem("server.port"), System.Globalization.CultureInfo.InvariantCulture)), "System.Net.Http");
            Client = Side.CreateClient();
        }

        public ClientSide Side { get; }

        public HttpClient Client { get; }

        public string ServerPort { get; }

        public void Add(string line) => _lines.Add(line);

        /// <summary>Runs one step under a caller's activity of its own, and records its answer (or exception) and the circuits' states after it.</summary>
        public async Task StepAsync(string name, Func<Task<HttpResponseMessage>> send)
        {
            using var caller = new Activity("caller-" + name).Start();
            try
            {
                using var response = await send();
                var body = await response.Content.ReadAsStringAsync();
                _lines.Add($"{name}: {(int)response.StatusCode} {body} fallback={Header(response, FallbackHeader)} retry-after={Header(response, "Retry-After")} age={Header(response, "Age")} length={response.Content.Headers.ContentLength} request={response.RequestMessage?.RequestUri}");
            }
            catch (Exception ex)
            {
                _lines.Add($"{name}: {ex.GetType().Name} {ex.Message} inner={ex.InnerException?.GetType().Name} {ex.InnerException?.Message} {(ex as LoadSheddingException)?.Reason} {(ex as LoadSheddingException)?.RetryAfter is { } r && r > TimeSpan.Zero}");
            }

            _lines.Add($"{name}: {string.Join(" ", Side.Registry.GetCircuits().OrderBy(c => c.Authority, StringComparer.Ordinal).Select(c => $"{c.Authority}={c.State}/{c.ConsecutiveFailures}"))}");
        }

        /// <summary>The steps' lines, then every metric, span and log of the breaker.</summary>
        public List<string> Lines()
        {
            foreach (var counter in _meters.Counters)
            {
                foreach (var m in counter.GetMeasurementSnapshot())
                {
                    _lines.Add($"metric {counter.Instrument?.Name} {m.Value} {string.Join(",", m.Tags.OrderBy(t => t.Key, StringComparer.Ordinal).Select(t => $"{t.Key}={t.Value}"))}");
                }
            }

            foreach (var a in _spans.Stopped)
            {
                _lines.Add($"span {a.Source.Name} {a.OperationName} {a.Status} {a.StatusDescription} parent={a.Parent?.OperationName} {string.Join(",", a.TagObjects.Where(t => t.Key != "url.full").OrderBy(t => t.Key, StringComparer.Ordinal).Select(t => $"{t.Key}={t.Value}"))}");
            }

            foreach (var r in Side.Logs.GetSnapshot().Where(r => r.Category?.StartsWith("CircuitBreaker.Http.", StringComparison.Ordinal) == true))
            {
                _lines.Add($"log {r.Level} {r.Id} {r.Message}");
            }

            return _lines.Select(l => l.Replace(ServerPort, "PORT", StringComparison.Ordinal).Replace(_backupPort, "ALT", StringComparison.Ordinal)).ToList();
        }

        public void Dispose()
        {
            Client.Dispose();
            _spans.Dispose();
            _meters.Dispose();
            Side.Dispose();
        }
    }
}
