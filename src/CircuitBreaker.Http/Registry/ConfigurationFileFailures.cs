using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;

namespace CircuitBreaker.Http;

/// <summary>
/// Notices the configuration files of one <see cref="IConfigurationRoot"/> that fail to load, such as an
/// <c>appsettings.json</c> saved half-written while the app runs.
/// </summary>
/// <remarks>
/// When the file watcher reloads a file that does not parse, the file provider drops all its data, raises no
/// change and throws on a thread the app never sees. Nothing reaches the breaker, and the next change of any
/// other source of the same root would make the breaker's section read as if the file's keys had been deleted:
/// every option back to its default. <see cref="FileConfigurationSource.OnLoadException"/> is the one hook .NET
/// offers for that failure, so a handler is chained onto each file source found in the root. It logs the failure
/// and remembers it; it changes nothing else: the app's own handler still runs after it and alone decides
/// <see cref="FileLoadExceptionContext.Ignore"/>. Setting Ignore here would turn the failed load into a change
/// notification with the file's settings gone, for every consumer of the app's configuration, and would stop
/// an explicit <see cref="IConfigurationRoot.Reload"/> from reporting the broken file to the code that asked.
/// </remarks>
internal sealed class ConfigurationFileFailures : IDisposable
{
    private readonly List<FileHook> _files;

    public ConfigurationFileFailures(IConfigurationRoot root, ILogger logger)
    {
        Root = root;
        _files = root.Providers.OfType<FileConfigurationProvider>().Select(p => new FileHook(p, logger)).ToList();
    }

    public IConfigurationRoot Root { get; }

    /// <summary>
    /// The path of a file that failed to load and holds no settings since, or <see langword="null"/>. A file
    /// whose failed load kept its earlier settings (an explicit reload keeps them), or that has loaded since,
    /// is not broken: the root reads as it did, or as the file now says.
    /// </summary>
    public string? BrokenFile => _files.FirstOrDefault(f => f.IsBroken)?.Path;

    public void Dispose()
    {
        foreach (var file in _files)
        {
            file.Dispose();
        }
    }

    private sealed class FileHook : IDisposable
    {
        // Hooks join and leave the chains of sources that several registries may share (providers built on one
        // configuration, whose lifetimes overlap): one at a time, or two leaving at once could each splice the other back in.
        private static readonly Lock ChainLock = new();

        private readonly FileConfigurationProvider _provider;
        private readonly ILogger _logger;
        private readonly Action<FileLoadExceptionContext> _handler;
        private volatile Action<FileLoadExceptionContext>? _previous; // changed when a hook below this one leaves the chain
        private volatile bool _failed;
        private volatile bool _disposed;

        // The provider's reload token when the load failed, or null when the app's handler chose Ignore. Providers
        // change their token after every load that completes, so one that has changed says a load succeeded since,
        // even of a file that now holds nothing (`{}`, or an optional file deleted).
        private volatile Microsoft.Extensions.Primitives.IChangeToken? _tokenAtFailure;

        public FileHook(FileConfigurationProvider provider, ILogger logger)
        {
            _provider = provider;
            _logger = logger;
            _handler = OnLoadException;
            lock (ChainLock)
            {
                _previous = provider.Source.OnLoadException;
                provider.Source.OnLoadException = _handler;
            }
        }

        public string Path => _provider.Source.Path ?? _provider.ToString();

        public bool IsBroken
        {
            get
            {
                if (!_failed)
                {
                    return false;
                }

                // The provider raises no "loaded" event: its reload token changed since the failure, or settings present
                // again, mean a load has succeeded since. Settings are the only sign after a failure the app chose to
                // ignore, whose provider changed its token with its data gone.
                if (_tokenAtFailure?.HasChanged == true || _provider.GetChildKeys([], parentPath: null).Any())
                {
                    _failed = false;
                    return false;
                }

                return true;
            }
        }

        public void Dispose()
        {
            _disposed = true;
            lock (ChainLock)
            {
                if (ReferenceEquals(_provider.Source.OnLoadException, _handler))
                {
                    _provider.Source.OnLoadException = _previous;
                    return;
                }

                // Another registry's hook chained onto this one since (its provider outlives this one's): spliced out
                // below it, or every provider disposed so would stay reachable through the chain, with its logging, for
                // as long as the configuration lives. Below a handler of someone else's, it stays, and passes straight through.
                for (var above = _provider.Source.OnLoadException?.Target as FileHook; above is not null; above = above._previous?.Target as FileHook)
                {
                    if (ReferenceEquals(above._previous, _handler))
                    {
                        above._previous = _previous;
                        return;
                    }
                }
            }
        }

        private void OnLoadException(FileLoadExceptionContext context)
        {
            if (!_disposed)
            {
                // The token first: a reader that sees the failure must not see an earlier failure's changed token.
                _tokenAtFailure = _provider.GetReloadToken();
                _failed = true;
                try
                {
                    Log.ConfigurationFileLoadFailed(_logger, context.Exception, Path);
                }
#pragma warning disable CA1031 // A faulty logger must not change how the app's configuration fails.
                catch (Exception)
#pragma warning restore CA1031
                {
                }
            }

            // Last, so that its exceptions and its choice of Ignore reach the configuration system as without the breaker.
            try
            {
                _previous?.Invoke(context);
            }
            finally
            {
                if (context.Ignore)
                {
                    _tokenAtFailure = null; // the provider will change its token for this very load, its data gone
                }
            }
        }
    }
}
