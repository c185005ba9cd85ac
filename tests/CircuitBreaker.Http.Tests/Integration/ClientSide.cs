using System.Collections.Concurrent;
using System.Text;
using CircuitBreaker.Http.Tests.TestSupport;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.FileProviders;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Primitives;
using Microsoft.Extensions.Time.Testing;

namespace CircuitBreaker.Http.Tests.Integration;

/// <summary>
/// The calling side of an integration test, wired the way an application wires it: a
/// <see cref="ServiceCollection"/> with the app's <see cref="IConfiguration"/> (from JSON), a
/// <see cref="FakeTimeProvider"/> as the <see cref="TimeProvider"/>, fake logging, and the clients the test adds.
/// </summary>
internal sealed class ClientSide : IDisposable
{
    private readonly ServiceProvider _services;
    private readonly ConcurrentQueue<CircuitStateChangedEventArgs> _transitions = new();

    private ClientSide(ServiceProvider services, FakeTimeProvider time)
    {
        _services = services;
        Time = time;
        Registry = services.GetRequiredService<ICircuitBreakerRegistry>();
        Registry.StateChanged += (_, e) => _transitions.Enqueue(e);
    }

    public FakeTimeProvider Time { get; }

    public ICircuitBreakerRegistry Registry { get; }

    public FakeLogCollector Logs => _services.GetFakeLogCollector();

    public IServiceProvider Services => _services;

    /// <summary>Gets the state changes seen so far, as <c>"users http://127.0.0.1:1234 Closed->Open"</c>.</summary>
    public IReadOnlyList<string> Transitions =>
        _transitions.Select(e => $"{e.Key.ClientName} {e.Key.Authority} {e.PreviousState}->{e.State}").ToList();

    /// <param name="configuration">The app's configuration, registered as <see cref="IConfiguration"/>.</param>
    /// <param name="addClients">Registers the clients, e.g. <c>s =&gt; s.AddHttpClient("users", ...).AddCircuitBreaker()</c>.</param>
    public static ClientSide Create(IConfiguration configuration, Action<IServiceCollection> addClients)
    {
        var time = new FakeTimeProvider();
        var services = new ServiceCollection();
        services.AddSingleton(configuration);
        services.AddSingleton<TimeProvider>(time);
        services.AddLogging(b => b.AddFakeLogging());
        addClients(services);
        return new ClientSide(services.BuildServiceProvider(new ServiceProviderOptions { ValidateOnBuild = true, ValidateScopes = true }), time);
    }

    /// <summary>The usual set-up: one client named <paramref name="name"/> whose base address is <paramref name="server"/>, with a breaker from configuration.</summary>
    public static ClientSide ForClient(IConfiguration configuration, KestrelDownstream server, string name = "users") =>
        Create(configuration, s => s.AddHttpClient(name, c => c.BaseAddress = server.BaseAddress).AddCircuitBreaker());

    public HttpClient CreateClient(string name = "users") =>
        _services.GetRequiredService<IHttpClientFactory>().CreateClient(name);

    /// <summary>The registry's view of one circuit, which must exist.</summary>
    public CircuitInfo Circuit(string clientName, string authority) =>
        Registry.GetCircuits().Single(c => c.ClientName == clientName && c.Authority == authority);

    public CircuitInfo Circuit(string clientName, KestrelDownstream server) => Circuit(clientName, server.Authority);

    public void Dispose() => _services.Dispose();
}

internal static class JsonConfiguration
{
    /// <summary>Builds the app's configuration from a JSON document, as <c>appsettings.json</c> would be read.</summary>
    public static IConfigurationRoot From(string json)
    {
        using var stream = new MemoryStream(Encoding.UTF8.GetBytes(json));
        return new ConfigurationBuilder().AddJsonStream(stream).Build();
    }
}

/// <summary>
/// An <c>appsettings.json</c> in a temporary directory, read by a real JSON file provider, that a test
/// rewrites and then reloads explicitly (<see cref="IConfigurationRoot.Reload"/>), which fires the same
/// change token as a file watcher would, without waiting for the file system.
/// </summary>
internal sealed class AppSettingsFile : IDisposable
{
    private readonly string _directory;
    private readonly string _path;

    public AppSettingsFile(string json)
    {
        _directory = Path.Combine(Path.GetTempPath(), "cb-it-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_directory);
        _path = Path.Combine(_directory, "appsettings.json");
        File.WriteAllText(_path, json);
        Root = new ConfigurationBuilder().AddJsonFile(_path, optional: false, reloadOnChange: false).Build();
    }

    public IConfigurationRoot Root { get; }

    /// <summary>Writes new content and reloads the configuration, as an operator editing the file would.</summary>
    public void Rewrite(string json)
    {
        File.WriteAllText(_path, json);
        Root.Reload();
    }

    public void Dispose()
    {
        (Root as IDisposable)?.Dispose();
        Directory.Delete(_directory, recursive: true);
    }
}

/// <summary>
/// An <c>appsettings.json</c> in a temporary directory, read by a real JSON file provider with
/// <c>reloadOnChange</c>, whose file watcher the test fires: <see cref="Save"/> makes the provider reload exactly
/// as after a save the file system reports (a reload that fails drops the file's settings, which only the
/// watcher's reload does), on the test's thread and at a known moment rather than after a file-system delay.
/// </summary>
internal sealed class WatchedAppSettingsFile : IDisposable
{
    private readonly string _directory;
    private readonly string _path;
    private readonly TriggeredFileProvider _files;
    private readonly bool _ownsRoot;

    /// <param name="json">The file's first content.</param>
    /// <param name="configure">Adjusts the file's source, e.g. to set the app's own <c>OnLoadException</c>.</param>
    /// <param name="into">A host's configuration to add the file to; by default a configuration of its own.</param>
    /// <param name="others">Further sources of the same configuration, after the file.</param>
    public WatchedAppSettingsFile(string json, Action<FileConfigurationSource>? configure = null, ConfigurationManager? into = null, params IConfigurationSource[] others)
    {
        _directory = Path.Combine(Path.GetTempPath(), "cb-it-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_directory);
        _path = Path.Combine(_directory, "appsettings.json");
        File.WriteAllText(_path, json);
        _files = new TriggeredFileProvider(_directory);
        var builder = (IConfigurationBuilder?)into ?? new ConfigurationBuilder();
        builder.AddJsonFile(source =>
        {
            source.FileProvider = _files;
            source.Path = "appsettings.json";
            source.Optional = false;
            source.ReloadOnChange = true;
            source.ReloadDelay = 0;
            configure?.Invoke(source);
        });
        foreach (var other in others)
        {
            builder.Add(other);
        }

        _ownsRoot = into is null;
        Root = into ?? builder.Build();
    }

    public IConfigurationRoot Root { get; }

    /// <summary>The file's source, as the configuration holds it.</summary>
    public FileConfigurationSource Source => Root.Providers.OfType<FileConfigurationProvider>().Single().Source;

    /// <summary>
    /// Writes new content and fires the watcher. Returns what the provider's reload threw, which a real watcher
    /// would drop on a thread of its own; <see langword="null"/> when it threw nothing.
    /// </summary>
    public Exception? Save(string json)
    {
        File.WriteAllText(_path, json);
        return _files.Fire();
    }

    public void Dispose()
    {
        if (_ownsRoot)
        {
            (Root as IDisposable)?.Dispose();
        }

        _files.Dispose();
        Directory.Delete(_directory, recursive: true);
    }

    private sealed class TriggeredFileProvider(string directory) : IFileProvider, IDisposable
    {
        private readonly PhysicalFileProvider _inner = new(directory);
        private CancellationTokenSource _changed = new();

        public IFileInfo GetFileInfo(string subpath) => _inner.GetFileInfo(subpath);

        public IDirectoryContents GetDirectoryContents(string subpath) => _inner.GetDirectoryContents(subpath);

        public IChangeToken Watch(string filter) => new CancellationChangeToken(Volatile.Read(ref _changed).Token);

        public Exception? Fire()
        {
            using var changed = Interlocked.Exchange(ref _changed, new CancellationTokenSource());
            try
            {
                changed.Cancel();
                return null;
            }
            catch (AggregateException ex)
            {
                return ex.InnerException;
            }
        }

        public void Dispose()
        {
            _changed.Dispose();
            _inner.Dispose();
        }
    }
}
