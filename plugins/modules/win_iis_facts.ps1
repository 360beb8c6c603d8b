#!powershell

# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

#AnsibleRequires -CSharpUtil Ansible.Basic

# Reads only: the OS build, the LocalMachine certificate stores, IIS sites and bindings
# (Microsoft.Web.Administration, the API behind IIS Manager) and the http.sys SSL table
# (netsh http show sslcert). The iis_plan module decides from this on the controller.

$spec = @{
    options = @{
        stores = @{ type = 'list'; elements = 'str'; default = @('My', 'CA', 'Root') }
        max_certificates = @{ type = 'int'; default = 2000 }
    }
    supports_check_mode = $true
}

$module = [Ansible.Basic.AnsibleModule]::Create($args, $spec)
$stores = $module.Params.stores
$maxCertificates = $module.Params.max_certificates

function Format-Utc([DateTime]$date) {
    return $date.ToUniversalTime().ToString('yyyy-MM-ddTHH:mm:ssZ')
}

function ConvertTo-HexThumbprint($bytes) {
    if ($null -eq $bytes -or $bytes.Length -eq 0) {
        return $null
    }
    return ([System.BitConverter]::ToString([byte[]]$bytes)).Replace('-', '').ToUpperInvariant()
}

function Get-StoreCertificate([string]$name) {
    $store = New-Object -TypeName System.Security.Cryptography.X509Certificates.X509Store -ArgumentList $name, 'LocalMachine'
    $flags = [System.Security.Cryptography.X509Certificates.OpenFlags]'ReadOnly, OpenExistingOnly'
    $store.Open($flags)
    try {
        $list = [System.Collections.Generic.List[Object]]@()
        foreach ($cert in $store.Certificates) {
            if ($list.Count -ge $maxCertificates) {
                $module.Warn("LocalMachine\$name holds more than $maxCertificates certificates; the rest are not listed")
                break
            }
            $list.Add(@{
                    thumbprint = $cert.Thumbprint.ToUpperInvariant()
                    subject = $cert.Subject
                    issuer = $cert.Issuer
                    not_after = Format-Utc $cert.NotAfter
                    has_private_key = $cert.HasPrivateKey
                    friendly_name = $cert.FriendlyName
                })
        }
        return , $list
    }
    finally {
        $store.Close()
    }
}

function Get-IisSite {
    # IIS may not be installed: no sites then, and iis_installed false.
    $dll = Join-Path -Path $env:windir -ChildPath 'System32\inetsrv\Microsoft.Web.Administration.dll'
    if (-not (Test-Path -LiteralPath $dll)) {
        return $null
    }
    Add-Type -Path $dll
    $manager = New-Object -TypeName Microsoft.Web.Administration.ServerManager
    try {
        $sites = [System.Collections.Generic.List[Object]]@()
        foreach ($site in $manager.Sites) {
            $bindings = [System.Collections.Generic.List[Object]]@()
            foreach ($binding in $site.Bindings) {
                # bindingInformation is "ip:port:host"; an IPv6 address keeps its brackets.
                $info = [string]$binding.BindingInformation
                $hostPart = ''
                $lastColon = $info.LastIndexOf(':')
                if ($lastColon -ge 0) {
                    $hostPart = $info.Substring($lastColon + 1)
                    $info = $info.Substring(0, $lastColon)
                }
                $portColon = $info.LastIndexOf(':')
                $ip = $info.Substring(0, [Math]::Max(0, $portColon))
                $port = 0
                [void][int]::TryParse($info.Substring($portColon + 1), [ref]$port)
                $sslFlags = 0
                if ($binding.Protocol -eq 'https') {
                    $sslFlags = [int]$binding.GetAttributeValue('sslFlags')
                }
                $bindings.Add(@{
                        protocol = $binding.Protocol
                        ip = $ip
                        port = $port
                        host = $hostPart
                        ssl_flags = $sslFlags
                        certificate_hash = ConvertTo-HexThumbprint $binding.CertificateHash
                        certificate_store = $binding.CertificateStoreName
                    })
            }
            $sites.Add(@{
                    name = $site.Name
                    id = [int64]$site.Id
                    bindings = $bindings
                })
        }
        return , $sites
    }
    finally {
        $manager.Dispose()
    }
}

function Get-HttpSysSslCert {
    # netsh prints one block per entry; its labels are localised (a Japanese Windows prints Japanese
    # labels), so the block is read by the shape of its values, not by the labels: the first value is
    # the IP:port / host:port (or CCS port), the first 40-digit hex value is the thumbprint, and the
    # store is the value that names a known certificate store.
    $output = & netsh.exe http show sslcert 2>&1
    if ($LASTEXITCODE -ne 0) {
        $module.Warn("netsh http show sslcert failed ($LASTEXITCODE): $($output -join ' ')")
        return , [System.Collections.Generic.List[Object]]@()
    }
    $knownStores = @('My', 'MY', 'WebHosting', 'Root', 'CA', 'TrustedPeople')
    $entries = [System.Collections.Generic.List[Object]]@()
    $block = [System.Collections.Generic.List[String]]@()
    foreach ($line in @($output) + @('')) {
        $text = [string]$line
        if ($text.Trim() -eq '') {
            if ($block.Count -gt 0) {
                $values = @($block)
                $address = $values[0]
                $thumbprint = $values | Where-Object { $_ -match '^[0-9a-fA-F]{40}$' } | Select-Object -First 1
                $storeName = $values | Where-Object { $knownStores -contains $_ } | Select-Object -First 1
                if ($address -match '^(\[[0-9a-fA-F:.]+\]|\d{1,3}(\.\d{1,3}){3}):\d+$') {
                    $entries.Add(@{ ip_port = $address; host_port = $null; thumbprint = "$thumbprint".ToUpperInvariant(); store = $storeName })
                }
                elseif ($address -match '^[^\s:]+:\d+$') {
                    $entries.Add(@{ ip_port = $null; host_port = $address; thumbprint = "$thumbprint".ToUpperInvariant(); store = $storeName })
                }
                $block.Clear()
            }
            continue
        }
        # The value of a "label : value" line inside an entry block (the header lines have no value; a label such as
        # "IP:port" has a colon of its own, so the separator is the first " : ").
        $colon = $text.IndexOf(' : ')
        if ($colon -gt 0 -and $text.StartsWith(' ')) {
            $block.Add($text.Substring($colon + 3).Trim())
        }
    }
    return , $entries
}

$os = Get-CimInstance -ClassName Win32_OperatingSystem
$certificates = @{}
foreach ($name in $stores) {
    try {
        $certificates[$name] = Get-StoreCertificate -name $name
    }
    catch {
        $module.FailJson("Cannot read the certificate store LocalMachine\${name}: $($_.Exception.Message)", $_)
    }
}

$sites = Get-IisSite
$module.Result.iis = @{
    os = @{
        version = [string]$os.Version
        build = [int]$os.BuildNumber
        caption = [string]$os.Caption
    }
    iis_installed = $null -ne $sites
    certificates = $certificates
    sites = if ($null -eq $sites) { @() } else { $sites }
    sslcert = Get-HttpSysSslCert
}
$module.ExitJson()
