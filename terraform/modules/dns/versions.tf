terraform {
  required_version = "~> 1.6"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.70"
      # Route53 query logs and DNSSEC signing keys must live in us-east-1.
      configuration_aliases = [aws.us_east_1]
    }
  }
}
