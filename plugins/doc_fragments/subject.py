# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:  # pylint: disable=too-few-public-methods
    """Subject DN, SAN and CA profile options; matches _csr.options.subject_argument_spec()."""

    DOCUMENTATION = r"""
options:
  common_name:
    description:
      - Common name (CN), the server's fully qualified domain name, for example C(www.example.co.jp).
      - It is always added to O(subject_alt_name) when missing, as browsers only read SANs.
    type: str
    aliases: [CN]
  country_name:
    description: Country (C), two upper-case letters (ISO 3166-1 alpha-2), for example C(JP).
    type: str
    aliases: [C]
  state_or_province_name:
    description: State or province (ST), for example C(Tokyo).
    type: str
    aliases: [ST]
  locality_name:
    description: Locality or city (L); for Tokyo's 23 wards the ward, for example C(Minato-ku).
    type: str
    aliases: [L]
  organization_name:
    description: Organisation (O), the registered English name, for example C(Example Co.,Ltd.).
    type: str
    aliases: [O]
  organizational_unit_name:
    description:
      - Organisational unit (OU). Public CAs no longer put it in certificates; the V(cabf) profile rejects it and
        the V(cybertrust) profile warns that it is dropped from certificates issued on or after 2022-06-23.
    type: str
    aliases: [OU]
  email_address:
    description: E-mail address in the subject. Public CA profiles reject it (Cybertrust's CSR guide says leave it empty).
    type: str
    aliases: [E]
  subject_alt_name:
    description:
      - Subject alternative names. Bare names are DNS names; prefix C(IP:), C(email:) or C(URI:) for other types.
      - The profile may add entries (the CN, or the bare domain of a C(www.) CN for V(cybertrust)).
    type: list
    elements: str
    default: []
    aliases: [SAN]
  digest:
    description: Hash that signs the CSR.
    type: str
    choices: [sha256, sha384, sha512, sha1]
    default: sha256
  profile:
    description:
      - CA profile whose rules the request must meet before anything is written.
      - A name - V(cybertrust) (the DN, key and digest rules of Cybertrust Japan's SureServer CSR guide), V(cabf)
        (public CAs under the CA/Browser Forum Baseline Requirements), V(private) (internal CAs, intranet names and
        IPs allowed), or a key of O(profiles).
      - Or a dict of rules, with C(extends) naming the profile it builds on.
    type: raw
    default: private
  profiles:
    description:
      - User-defined profiles by name, each a dict of rules with optional C(extends).
      - 'Rules: C(key_types), C(min_rsa_size), C(curves), C(digests), C(required_fields), C(field_rules),
        C(forbidden_attributes), C(ascii_fields), C(country_pattern), C(cn_must_be_fqdn), C(allow_wildcard),
        C(allow_ip_names), C(allow_private_ips), C(allow_intranet_names), C(intranet_suffixes), C(public_suffixes),
        C(cn_in_san), C(www_adds_bare_domain), C(description). See the collection docs for their meaning.'
    type: dict
    default: {}
"""
