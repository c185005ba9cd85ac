using System.Diagnostics;
using System.Net;
using System.Text.Json;
using CircuitBreaker.Demo;
using CircuitBreaker.Http.Tests.TestSupport;

namespace CircuitBreaker.Http.Tests.Demo;

/// <summary>
/// A real Prometheus server, started on a free loopback port with <c>samples/observability/prometheus.yml</c>
/// (pointed at the demo's port), scrapes the demo's <c>/metrics</c>; the test then asks Prometheus's HTTP API
/// for the playbook's metrics, as an operator would. Skipped when Prometheus is not installed, failed instead
/// under <c>.ci/run</c>.
/// </summary>
[Collection(DemoDrillGroup.Name)]
public sealed class PrometheusScrapeTests
{
    private static readonly TimeSpan ScrapeWait = TimeSpan.FromSeconds(60);

    [SkippableFact]
    public async Task Prometheus_ScrapingTheDemo_FindsCircuitOpenTotalAndCircuitStateWithTheDemosLabels()
    {
        var prometheus = ServerBinary.Require("prometheus", "prometheus");
        var repository = RepositoryRoot();
        var demoPort = LoopbackPort.Free();
        var prometheusPort = LoopbackPort.Free();
        using var work = new TemporaryFolder();
        File.WriteAllText(
            Path.Combine(work.Path, "prometheus.yml"),
            File.ReadAllText(Path.Combine(repository, "samples", "observability", "prometheus.yml")).Replace("127.0.0.1:9464", $"127.0.0.1:{demoPort}", StringComparison.Ordinal));
        File.Copy(Path.Combine(repository, "samples", "observability", "alerts.yml"), Path.Combine(work.Path, "alerts.yml"));

        using var stop = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        var output = TextWriter.Synchronized(new StringWriter());
        var scenario = Path.Combine(repository, "samples", "CircuitBreaker.Demo", "scenarios", "quick.json");
        var demo = DemoProgram.ExecuteAsync(["--scenario", scenario, "--no-color", "--prometheus", "--prometheus-port", $"{demoPort}"], output, stop.Token);
        using var server = StartPrometheus(prometheus, work.Path, prometheusPort);
        try
        {
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{prometheusPort}/") };

            var opened = await QueryUntilAsync(http, "circuit_open_total", results => results.Count > 0, server, output);
            var states = await QueryUntilAsync(http, "circuit_state", results => results.Count >= 2, server, output);

            Assert.All(opened.Concat(states), series =>
            {
                Assert.Equal("circuitbreaker-demo", series["job"]);
                Assert.Equal("127.0.0.1", series["server_address"]);
                Assert.True(int.TryParse(series["server_port"], out _), $"server_port {series["server_port"]}");
            });
            Assert.Subset(new HashSet<string> { "users", "orders" }, opened.Select(s => s["http_client_name"]).ToHashSet());
            Assert.Equal(new HashSet<string> { "users", "orders" }, states.Select(s => s["http_client_name"]).ToHashSet());
            Assert.Contains(opened, s => s["circuit_previous_state"] == "closed");
        }
        finally
        {
            server.Kill(entireProcessTree: true);
            await server.WaitForExitAsync(CancellationToken.None);
            await stop.CancelAsync();
            await demo;
        }
    }

    private static Process StartPrometheus(string prometheus, string folder, int port)
    {
        var start = new ProcessStartInfo(prometheus)
        {
            WorkingDirectory = folder,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.ArgumentList.Add($"--config.file={Path.Combine(folder, "prometheus.yml")}");
        start.ArgumentList.Add($"--storage.tsdb.path={Path.Combine(folder, "data")}");
        start.ArgumentList.Add($"--web.listen-address=127.0.0.1:{port}");
        var process = Process.Start(start) ?? throw new InvalidOperationException("prometheus did not start");
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    /// <summary>
    /// Asks Prometheus until the query's result satisfies <paramref name="enough"/>: the first scrape of the demo
    /// comes up to one scrape interval (5 s) after Prometheus starts. Bounded; the failure message says why.
    /// </summary>
    private static async Task<List<Dictionary<string, string>>> QueryUntilAsync(
        HttpClient http, string query, Func<List<Dictionary<string, string>>, bool> enough, Process server, TextWriter demoOutput)
    {
        var deadline = Stopwatch.StartNew();
        var last = new List<Dictionary<string, string>>();
        while (deadline.Elapsed < ScrapeWait)
        {
            Assert.False(server.HasExited, $"prometheus exited with code {(server.HasExited ? server.ExitCode : 0)}");
            try
            {
                using var response = await http.GetAsync(new Uri($"api/v1/query?query={Uri.EscapeDataString(query)}", UriKind.Relative));
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
                    last = json.RootElement.GetProperty("data").GetProperty("result").EnumerateArray()
                        .Select(r => r.GetProperty("metric").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString() ?? string.Empty))
                        .ToList();
                    if (enough(last))
                    {
                        return last;
                    }
                }
            }
            catch (HttpRequestException)
            {
                // Prometheus is still starting.
            }

            await Task.Delay(TimeSpan.FromMilliseconds(500));
        }

        Assert.Fail($"Prometheus did not return enough '{query}' series within {ScrapeWait.TotalSeconds} s; last: {JsonSerializer.Serialize(last)}\ndemo output:\n{demoOutput}");
        return last;
    }


    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "CircuitBreaker.Http.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("The repository root (CircuitBreaker.Http.sln) was not found above " + AppContext.BaseDirectory);
    }

    private sealed class TemporaryFolder : IDisposable
    {
        public string Path { get; } = Directory.CreateTempSubdirectory("circuitbreaker-prometheus-").FullName;

        public void Dispose() => Directory.Delete(Path, recursive: true);
    }
}
