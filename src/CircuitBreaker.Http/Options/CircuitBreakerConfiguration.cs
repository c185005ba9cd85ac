using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Reflection;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace CircuitBreaker.Http;

/// <summary>
/// Binds a configuration section onto the options of one client (or of every client): the section itself,
/// then its <c>Clients:{clientName}</c> overlay. Unknown keys and unconvertible values are reported as
/// <see cref="OptionsValidationException"/> naming the full key, never silently ignored.
/// </summary>
internal sealed class CircuitBreakerConfiguration : IConfigureNamedOptions<CircuitBreakerOptions>
{
    /// <summary>The section read by <c>AddCircuitBreaker()</c> without arguments.</summary>
    public const string DefaultSectionName = "CircuitBreaker";

    /// <summary>The child section read by a fleet coordination package (such as CircuitBreaker.Http.Redis), not by these options.</summary>
    public const string FleetKey = "Fleet";

    /// <summary>The child section of per-client overlays.</summary>
    public const string ClientsKey = "Clients";

    // The walk looks up the keys of nested options by their type at run time, which the trimmer cannot follow: naming
    // every options type here keeps their properties (Native AOT would otherwise strip them all, and report every key
    // as unknown).
    private static readonly Dictionary<Type, Dictionary<string, PropertyInfo>> OptionsProperties = new()
    {
        [typeof(CircuitBreakerOptions)] = BindableProperties(typeof(CircuitBreakerOptions)),
        [typeof(CircuitBreakerHostOptions)] = BindableProperties(typeof(CircuitBreakerHostOptions)),
        [typeof(CircuitBreakerFallbackOptions)] = BindableProperties(typeof(CircuitBreakerFallbackOptions)),
        [typeof(CircuitBreakerFallbackHostOptions)] = BindableProperties(typeof(CircuitBreakerFallbackHostOptions)),
        [typeof(FallbackCacheOptions)] = BindableProperties(typeof(FallbackCacheOptions)),
        [typeof(FallbackCacheHostOptions)] = BindableProperties(typeof(FallbackCacheHostOptions)),
        [typeof(DegradedResponseOptions)] = BindableProperties(typeof(DegradedResponseOptions)),
        [typeof(ThrottleOptions)] = BindableProperties(typeof(ThrottleOptions)),
    };

    private readonly string? _clientName;
    private readonly FleetKeyUse _fleet;

    /// <param name="clientName">The client to configure, or <see langword="null"/> for every client.</param>
    /// <param name="section">The section to bind; <see langword="null"/> when the app has no configuration.</param>
    /// <param name="fleet">
    /// Who reads the <c>Fleet</c> child. Without a fleet coordination package that key is unknown like any other, so
    /// that a fleet configured without its package does not pass silently; with one, it is read from the app's
    /// <c>CircuitBreaker:Fleet</c> only, so a <c>Fleet</c> in any other section would be read by nobody.
    /// </param>
    public CircuitBreakerConfiguration(string? clientName, IConfiguration? section, FleetKeyUse fleet = FleetKeyUse.Unknown)
    {
        _clientName = clientName;
        Section = section;
        _fleet = fleet;
    }

    /// <summary>What the <c>Fleet</c> child of a bound section is to the options.</summary>
    internal enum FleetKeyUse
    {
        /// <summary>No fleet coordination package is registered: an unknown key.</summary>
        Unknown,

        /// <summary>The package reads this very section's <c>Fleet</c> child (the app's <c>CircuitBreaker</c> section).</summary>
        ReadHere,

        /// <summary>The package reads the app's <c>CircuitBreaker:Fleet</c>, not this section's <c>Fleet</c>.</summary>
        ReadElsewhere,
    }

    /// <summary>The bound section, watched by the registry for reloads.</summary>
    public IConfiguration? Section { get; }

    /// <summary>Whether this section configures the client named <paramref name="name"/>.</summary>
    public bool AppliesTo(string name) => _clientName is null || _clientName == name;

    /// <summary>Whether this section configures every client, rather than one named client.</summary>
    public bool AppliesToEveryClient => _clientName is null;

    public void Configure(CircuitBreakerOptions options) => Configure(Options.DefaultName, options);

    public void Configure(string? name, CircuitBreakerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        name ??= Options.DefaultName;
        if (Section is null || !AppliesTo(name))
        {
            return;
        }

        var errors = new List<string>();
        Bind(Section, options, allowClients: true, _fleet, errors);
        if (!string.IsNullOrEmpty(name))
        {
            var clientSection = Section.GetSection(ClientsKey).GetSection(name);

            // An overlay written as one value has no children and is reported by the walk of the shared section,
            // which checks every client's overlay, so binding it here would only report it twice.
            if (clientSection.GetChildren().Any())
            {
                Bind(clientSection, options, allowClients: false, FleetKeyUse.Unknown, errors);
            }
        }

        if (errors.Count > 0)
        {
            throw new OptionsValidationException(name, typeof(CircuitBreakerOptions), errors);
        }
    }

    private static void Bind(IConfiguration section, CircuitBreakerOptions options, bool allowClients, FleetKeyUse fleet, List<string> errors)
    {
        var before = errors.Count;
        // The walk below checks the shape of each child, never of the section itself; a section written as one
        // value (`"CircuitBreaker": false`) has no children, so the binder would keep every default without a word.
        if (section is IConfigurationSection own && !IsObject(own, errors))
        {
            return;
        }

        if (fleet == FleetKeyUse.ReadElsewhere && section.GetSection(FleetKey) is { } misplaced && (misplaced.Value is not null || misplaced.GetChildren().Any()))
        {
            errors.Add($"{misplaced.Path}: fleet mode reads its options from {DefaultSectionName}:{FleetKey} of the app's configuration only, whatever section the breaker is bound to; move them there.");
        }

        FindUnknownKeys(section, typeof(CircuitBreakerOptions), allowClients ? ClientsKey : null, errors, fleet == FleetKeyUse.Unknown ? null : FleetKey);
        if (errors.Count > before)
        {
            return;
        }

        try
        {
            // Unknown keys were reported above; the binder still reports values that cannot be converted.
            section.Bind(options);
        }
        catch (InvalidOperationException ex)
        {
            errors.Add($"{SectionPath(section)}: {ex.Message}");
        }
    }

    /// <summary>
    /// A host key written with a ':' reaches the binder split into nested keys, since ':' separates configuration keys:
    /// an IPv6 address, or a host with a port. Either would be reported as an unknown key that names neither the host
    /// nor the cause. The keys as written are rebuilt by following the children that are not an option's name down to
    /// where options (or a value) begin; they branch where several addresses share their first groups (::1 and ::2).
    /// </summary>
    private static List<string>? ColonInHostKeys(IConfigurationSection hosts, IConfigurationSection entry)
    {
        var options = OptionsProperties[typeof(CircuitBreakerHostOptions)];
        List<string>? found = null;
        Follow(entry, entry.Key);
        return found;

        void Follow(IConfigurationSection node, string written)
        {
            var ends = node.Value is not null;
            var goesOn = false;
            foreach (var child in node.GetChildren())
            {
                if (options.ContainsKey(child.Key))
                {
                    ends = true;
                }
                else
                {
                    goesOn = true;
                    Follow(child, written + ":" + child.Key);
                }
            }

            if ((ends || !goesOn) && Explain(written) is { } error)
            {
                (found ??= []).Add(error);
            }
        }

        string? Explain(string written)
        {
            if (!written.Contains(':', StringComparison.Ordinal))
            {
                return null;
            }

            if (written.StartsWith('[') || System.Net.IPAddress.TryParse(written, out _))
            {
                return $"{hosts.Path}: the host key '{written}' is an IPv6 address, whose ':' separate configuration keys, so it cannot be a key in configuration. Set its overrides in code, as o.Hosts[\"::1\"].";
            }

            var port = written[(written.LastIndexOf(':') + 1)..];
            return port.Length > 0 && port.All(char.IsAsciiDigit)
                ? $"{hosts.Path}: the host key '{written}' cannot include a port: ':' separates configuration keys, and an override applies to every port of its host."
                : null;
        }
    }

    /// <summary>
    /// Reports every key of <paramref name="section"/> that <paramref name="type"/> has no bindable property for,
    /// with its full path, looking into nested options and into dictionaries of options (such as Hosts).
    /// Inside a host override every value left null means "the client's value", so there a JSON null, or an empty
    /// string for anything but text (which binds as empty text), cannot mean what it means for the client, and is
    /// reported too.
    /// </summary>
    private static void FindUnknownKeys(IConfiguration section, Type type, string? extraKey, List<string> errors, string? claimedKey = null, bool inHostOverride = false)
    {
        var properties = OptionsProperties.TryGetValue(type, out var known)
            ? known
            : throw new UnreachableException($"{type} is missing from {nameof(OptionsProperties)}.");
        foreach (var child in section.GetChildren())
        {
            if (claimedKey is not null && string.Equals(child.Key, claimedKey, StringComparison.OrdinalIgnoreCase))
            {
                continue; // read and checked by the package that claimed it
            }

            if (extraKey is not null && string.Equals(child.Key, extraKey, StringComparison.OrdinalIgnoreCase))
            {
                if (IsObject(child, errors))
                {
                    foreach (var client in child.GetChildren())
                    {
                        IsObject(client, errors); // its keys are checked when that client is configured
                    }
                }

                continue;
            }

            if (!properties.TryGetValue(child.Key, out var property))
            {
                errors.Add($"{child.Path}: unknown configuration key '{child.Key}'. Known keys: {string.Join(", ", properties.Keys.Order(StringComparer.Ordinal))}.");
            }
            else if (DictionaryValueType(property.PropertyType) is { } valueType)
            {
                if (!IsObject(child, errors))
                {
                    continue;
                }

                foreach (var entry in child.GetChildren())
                {
                    if (valueType == typeof(CircuitBreakerHostOptions) && ColonInHostKeys(child, entry) is { } colons)
                    {
                        errors.AddRange(colons);
                    }
                    else if (IsOptionsType(valueType))
                    {
                        if (IsObject(entry, errors))
                        {
                            FindUnknownKeys(entry, valueType, extraKey: null, errors, inHostOverride: inHostOverride || valueType == typeof(CircuitBreakerHostOptions));
                        }
                    }
                    else
                    {
                        CheckValue(entry, valueType, errors);
                    }
                }
            }
            else if (IsOptionsType(property.PropertyType))
            {
                if (IsObject(child, errors))
                {
                    FindUnknownKeys(child, property.PropertyType, extraKey: null, errors, inHostOverride: inHostOverride);
                }
            }
            else if (inHostOverride && !child.GetChildren().Any() && (child.Value is null || (child.Value.Length == 0 && property.PropertyType != typeof(string))))
            {
                errors.Add(NullInHostOverride(child, property));
            }
            else
            {
                CheckValue(child, property.PropertyType, errors);
            }
        }
    }

    /// <summary>
    /// The binder reads a JSON null or empty string in a host override as "not set", and the host then keeps the
    /// client's value: the opposite of what null means for the client's AttemptTimeout (off).
    /// </summary>
    private static string NullInHostOverride(IConfigurationSection section, PropertyInfo property)
    {
        // Only these two have a value that turns them off (infinite); a host cannot turn off the others once its client sets them.
        var hasOffValue = property.DeclaringType == typeof(CircuitBreakerHostOptions)
            && property.Name is nameof(CircuitBreakerHostOptions.AttemptTimeout) or nameof(CircuitBreakerHostOptions.SlowCallDuration);
        return hasOffValue
            ? $"{section.Path}: null or empty in a host override would keep the client's value, not turn it off; write -00:00:00.001 to turn it off for this host, or remove the key to keep the client's value."
            : $"{section.Path}: null or empty in a host override would silently keep the client's value; remove the key to keep the client's value, or write the value this host should use.";
    }

    /// <summary>An object key must not hold a single value (such as <c>"Fallback": "cache"</c>), which the binder would ignore.</summary>
    private static bool IsObject(IConfigurationSection section, List<string> errors)
    {
        if (section.Value is not null && !section.GetChildren().Any())
        {
            errors.Add($"{section.Path}: expects an object of keys, not the value '{section.Value}'.");
            return false;
        }

        return true;
    }

    /// <summary>
    /// A single value must be one value that converts to the property's type: the binder would silently keep
    /// the default for an array or object, read null as the type's default, read a bare number as days for a
    /// duration, and drop a whole dictionary entry (a host override) when one of its values does not convert.
    /// </summary>
    private static void CheckValue(IConfigurationSection section, Type type, List<string> errors)
    {
        var target = Nullable.GetUnderlyingType(type) ?? type;
        if (section.GetChildren().Any())
        {
            errors.Add($"{section.Path}: expects a single value, not an array or object.");
        }
        else if (string.IsNullOrEmpty(section.Value))
        {
            if (Nullable.GetUnderlyingType(type) is null && type.IsValueType)
            {
                errors.Add($"{section.Path}: expects a value, not null or empty; remove the key to keep the default.");
            }
            else if (section.Value is not null && target != typeof(string))
            {
                // Null unsets such an option, but the binder ignores an empty value, and the default or the shared section's
                // value would stay without a word; an environment variable or a command-line argument cannot be null, so an
                // empty one is how it would try to turn the option off.
                errors.Add(section.Key is nameof(CircuitBreakerOptions.AttemptTimeout) or nameof(CircuitBreakerOptions.SlowCallDuration)
                    ? $"{section.Path}: an empty value would keep the default (or the shared section's value), not turn it off; -00:00:00.001 turns it off (so does null, in JSON), or remove the key to keep that value."
                    : $"{section.Path}: an empty value would silently keep the default (or the shared section's value); write null (in JSON) to unset it, or remove the key to keep that value.");
            }
        }
        else if (target == typeof(TimeSpan) && !section.Value.Contains(':', StringComparison.Ordinal))
        {
            errors.Add($"{section.Path}: '{section.Value}' cannot be converted to type 'System.TimeSpan': write a duration as hh:mm:ss, for example 00:00:05 (a bare number would mean days).");
        }
        else if (!Converts(section.Value, target))
        {
            errors.Add($"{section.Path}: '{section.Value}' cannot be converted to type '{target.FullName}'.");
        }
    }

    /// <summary>Whether <paramref name="value"/> converts to <paramref name="type"/> as the binder generated at compile time parses it.</summary>
    private static bool Converts(string value, Type type) =>
        type == typeof(int) ? int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out _)
        : type == typeof(long) ? long.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out _)
        : type == typeof(double) ? double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out _)
        : type == typeof(bool) ? bool.TryParse(value, out _)
        : type == typeof(TimeSpan) ? TimeSpan.TryParse(value, CultureInfo.InvariantCulture, out _)
        : type == typeof(Uri) ? Uri.TryCreate(value, UriKind.RelativeOrAbsolute, out _)
        : type == typeof(string) ? true
        : throw new UnreachableException($"No conversion check for {type}.");

    private static Dictionary<string, PropertyInfo> BindableProperties([DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicProperties)] Type type) =>
        type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => !typeof(Delegate).IsAssignableFrom(p.PropertyType)) // code-only, such as Fallback.OnOpen
            .ToDictionary(p => p.Name, StringComparer.OrdinalIgnoreCase);

    private static bool IsOptionsType(Type type) => type.IsClass && type != typeof(string) && type != typeof(Uri);

    private static Type? DictionaryValueType(Type type) =>
        type.IsGenericType && type.GetGenericTypeDefinition() == typeof(IDictionary<,>) ? type.GetGenericArguments()[1] : null;

    private static string SectionPath(IConfiguration section) =>
        section is IConfigurationSection s ? s.Path : "configuration";
}
