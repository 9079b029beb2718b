import type { TaxonomyEntry } from './entry.js';

/**
 * The fideslang default data subjects, as shipped by fideslang 3.1.4
 * (`src/fideslang/default_taxonomy/data_subjects.py`). Flat: no subject has a parent.
 * Copied verbatim; do not edit by hand (docs/datamap.md (Fides compatibility) says how to update).
 */
export const DATA_SUBJECTS: readonly TaxonomyEntry[] = [
  {
    key: 'anonymous_user',
    name: 'Anonymous User',
    description: 'An individual that is unidentifiable to the systems. Note - This should only be applied to truly anonymous users where there is no risk of re-identification',
  },
  { key: 'citizen_voter', name: 'Citizen Voter', description: 'An individual registered to voter with a state or authority.' },
  { key: 'commuter', name: 'Commuter', description: 'An individual that is traveling or transiting in the context of location tracking.' },
  { key: 'consultant', name: 'Consultant', description: 'An individual employed in a consultative/temporary capacity by the organization.' },
  { key: 'customer', name: 'Customer', description: 'An individual or other organization that purchases goods or services from the organization.' },
  { key: 'employee', name: 'Employee', description: 'An individual employed by the organization.' },
  { key: 'job_applicant', name: 'Job Applicant', description: 'An individual applying for employment to the organization.' },
  { key: 'next_of_kin', name: 'Next of Kin', description: 'A relative of any other individual subject where such a relationship is known.' },
  { key: 'passenger', name: 'Passenger', description: 'An individual traveling on some means of provided transport.' },
  { key: 'patient', name: 'Patient', description: 'An individual identified for the purposes of any medical care.' },
  { key: 'prospect', name: 'Prospect', description: 'An individual or organization to whom an organization is selling goods or services.' },
  { key: 'shareholder', name: 'Shareholder', description: 'An individual or organization that holds equity in the organization.' },
  { key: 'supplier_vendor', name: 'Supplier/Vendor', description: 'An individual or organization that provides services or goods to the organization.' },
  { key: 'trainee', name: 'Trainee', description: 'An individual undergoing training by the organization.' },
  { key: 'visitor', name: 'Visitor', description: 'An individual visiting a location.' },
];
